/*! Dartmouth chat widget. Paste one tag into any page:
 *
 *   <script src="https://YOUR-GATEWAY/widget.js" data-agent="fam" async></script>
 *
 * Attributes (all optional): data-agent (default "fam"); data-gateway (default: where this
 * script came from); data-token or token (a session token: sent as "Authorization: Bearer" and
 * as ?token= on the WebSocket); data-mode ("server": the gateway listens and speaks; "native":
 * the browser's own speech recognition and synthesis; "text": no microphone); data-transport
 * ("auto": WebRTC, falling back to WebSocket; "webrtc"; "websocket"); data-voice (a TTS voice);
 * data-lang (speech language, native mode); data-title; data-greeting; data-position ("right"
 * or "left"); data-target (a CSS selector: render inside that element instead of as a bubble);
 * data-open ("true": start open); data-meta ("true": show provider and latency under replies).
 *
 * Theming: set CSS variables on the element, e.g. `dartmouth-widget { --dm-accent: #b00020 }`:
 * --dm-accent, --dm-accent-fg, --dm-bg, --dm-fg, --dm-muted, --dm-bot-bg, --dm-border,
 * --dm-radius, --dm-font, --dm-width, --dm-height, --dm-offset, --dm-z.
 *
 * Script API: window.Dartmouth.widgets[i] has open(), close(), send(text), startVoice(),
 * stopVoice(), setAgent(id), setToken(token), stats(); the element fires "dartmouth:reply",
 * "dartmouth:transcript", "dartmouth:voice" and "dartmouth:error" events.
 *
 * Plain ES2020, no dependencies, no build step.
 */
(() => {
  'use strict';

  const script = document.currentScript || document.querySelector('script[src*="widget.js"]');
  const CAPTURE_RATE = 16000; // what the gateway's VAD and STT want
  const FRAME_SAMPLES = 320; // 20 ms at 16 kHz
  const PLAYBACK_RATE = 24000;
  const JITTER_S = 0.06; // audio buffered before playback starts (or restarts after a gap)
  const UNDERRUN_S = 0.25; // a gap in a reply's audio shorter than this is a late frame, not its end

  const ICONS = {
    chat: '<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H9l-5 4v-4a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2z"/></svg>',
    close: '<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M6 6l12 12M18 6L6 18" stroke="currentColor" stroke-width="2.2" fill="none" stroke-linecap="round"/></svg>',
    mic: '<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M12 14a3 3 0 0 0 3-3V5a3 3 0 0 0-6 0v6a3 3 0 0 0 3 3zm5-3a5 5 0 0 1-10 0H5a7 7 0 0 0 6 6.9V21h2v-3.1A7 7 0 0 0 19 11z"/></svg>',
    send: '<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M3 20l18-8L3 4v6l12 2-12 2z"/></svg>',
  };

  const CSS = `
:host { all: initial; }
:host { --_accent: var(--dm-accent, #2f5bea); --_accent-fg: var(--dm-accent-fg, #fff); --_bg: var(--dm-bg, #fff);
  --_fg: var(--dm-fg, #1d2430); --_muted: var(--dm-muted, #5d6778); --_bot: var(--dm-bot-bg, #eef1f6);
  --_border: var(--dm-border, #d5dae3); --_radius: var(--dm-radius, 14px); --_offset: var(--dm-offset, 20px);
  font: 15px/1.45 var(--dm-font, system-ui, -apple-system, "Segoe UI", Roboto, sans-serif); color: var(--_fg); }
* { box-sizing: border-box; }
.root { position: fixed; bottom: var(--_offset); right: var(--_offset); z-index: var(--dm-z, 2147483000);
  display: flex; flex-direction: column; align-items: flex-end; gap: 12px; }
.root.left { right: auto; left: var(--_offset); align-items: flex-start; }
.root.inline { position: static; display: block; height: 100%; }
button { font: inherit; color: inherit; cursor: pointer; border: 0; background: none; }
button:focus-visible, input:focus-visible, .log:focus-visible { outline: 3px solid var(--_accent); outline-offset: 2px; }
svg { width: 22px; height: 22px; fill: currentColor; display: block; }
.bubble { width: 58px; height: 58px; border-radius: 50%; background: var(--_accent); color: var(--_accent-fg);
  display: grid; place-items: center; box-shadow: 0 6px 20px rgba(0,0,0,.22); transition: transform .15s ease; }
.bubble:hover { transform: scale(1.06); }
.bubble svg { width: 28px; height: 28px; }
.panel { width: min(var(--dm-width, 370px), calc(100vw - 2 * var(--_offset))); height: min(var(--dm-height, 540px), calc(100vh - 110px));
  background: var(--_bg); color: var(--_fg); border: 1px solid var(--_border); border-radius: var(--_radius);
  box-shadow: 0 12px 40px rgba(0,0,0,.18); display: flex; flex-direction: column; overflow: hidden;
  transform-origin: bottom right; animation: dm-in .18s ease-out; }
.inline .panel { width: 100%; height: 100%; min-height: 320px; box-shadow: none; animation: none; }
.panel[hidden] { display: none; }
@keyframes dm-in { from { opacity: 0; transform: translateY(8px) scale(.98); } }
header { display: flex; align-items: center; gap: 8px; padding: 12px 14px; background: var(--_accent); color: var(--_accent-fg); }
header h2 { font-size: 16px; font-weight: 600; margin: 0; flex: 1; }
header button { border-radius: 8px; padding: 4px; color: var(--_accent-fg); }
.inline header .close { display: none; }
.log { flex: 1; overflow-y: auto; padding: 14px; display: flex; flex-direction: column; gap: 10px; scroll-behavior: smooth; }
.msg { max-width: 85%; padding: 8px 12px; border-radius: 12px; white-space: pre-wrap; word-wrap: break-word; }
.msg p { margin: 0; }
.msg.user { align-self: flex-end; background: var(--_accent); color: var(--_accent-fg); border-bottom-right-radius: 4px; }
.msg.assistant { align-self: flex-start; background: var(--_bot); border-bottom-left-radius: 4px; }
.msg.assistant[data-state="streaming"] .text:empty::after { content: "…"; color: var(--_muted); }
.msg.error { align-self: stretch; max-width: none; background: #fdecec; color: #8a1c1c; font-size: 14px; }
.msg .meta { font-size: 12px; color: var(--_muted); margin-top: 4px; }
.msg.user .meta { color: inherit; opacity: .8; }
.msg .meta:empty { display: none; }
.status { min-height: 1.2em; margin: 0; padding: 0 14px; font-size: 12.5px; color: var(--_muted); }
form { display: flex; gap: 6px; padding: 10px; border-top: 1px solid var(--_border); align-items: center; }
input { flex: 1; min-width: 0; font: inherit; color: var(--_fg); background: var(--_bg); padding: 9px 12px;
  border: 1px solid var(--_border); border-radius: 999px; }
.mic, .send { width: 40px; height: 40px; border-radius: 50%; display: grid; place-items: center; flex: none; }
.send { background: var(--_accent); color: var(--_accent-fg); }
.send:disabled { opacity: .5; cursor: default; }
.mic { color: var(--_accent); border: 1px solid var(--_border); position: relative; }
.mic[aria-pressed="true"] { background: #d92d20; color: #fff; border-color: #d92d20; }
.mic[aria-pressed="true"]::before { content: ""; position: absolute; inset: -4px; border-radius: 50%;
  border: 2px solid #d92d20; opacity: .55; transform: scale(calc(1 + var(--dm-level, 0) * .35)); transition: transform .08s linear; }
.mic[hidden] { display: none; }
.sr { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
@media (prefers-reduced-motion: reduce) {
  .panel, .bubble, .mic::before { animation: none !important; transition: none !important; }
  .log { scroll-behavior: auto; }
  .mic[aria-pressed="true"]::before { transform: none; }
}`;

  // ---- small helpers ----

  function el(tag, attrs, children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === false || v == null) continue;
      if (k === 'class') e.className = v;
      else if (k === 'text') e.textContent = v;
      else if (k === 'html') e.innerHTML = v; // only our own constant icons
      else e.setAttribute(k, v === true ? '' : v);
    }
    for (const c of children || []) e.append(c);
    return e;
  }

  // sseEvents parses a text/event-stream body as it arrives: {event, data} per event.
  async function* sseEvents(body) {
    const reader = body.getReader();
    const decoder = new TextDecoder();
    let buf = '';
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += decoder.decode(value, { stream: true }).replace(/\r\n?/g, '\n');
        let cut;
        while ((cut = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, cut);
          buf = buf.slice(cut + 2);
          let event = 'message';
          const data = [];
          for (const line of block.split('\n')) {
            if (!line || line[0] === ':') continue; // comments keep the stream open
            const colon = line.indexOf(':');
            const field = colon < 0 ? line : line.slice(0, colon);
            let value = colon < 0 ? '' : line.slice(colon + 1);
            if (value[0] === ' ') value = value.slice(1);
            if (field === 'event') event = value;
            else if (field === 'data') data.push(value);
          }
          if (data.length) yield { event, data: data.join('\n') };
        }
      }
    } finally {
      reader.releaseLock();
    }
  }

  async function apiError(res) {
    try {
      const body = await res.json();
      if (body && body.error) return { status: res.status, code: body.error.code, message: body.error.message };
    } catch (_) { /* not JSON */ }
    return { status: res.status, code: 'http_' + res.status, message: 'the gateway answered ' + res.status };
  }

  function storage() {
    try { return window.sessionStorage; } catch (_) { return null; } // blocked in some iframes
  }

  function fmtMs(ms) {
    if (ms == null || !isFinite(ms)) return '';
    return ms >= 1000 ? (ms / 1000).toFixed(2) + ' s' : Math.round(ms) + ' ms';
  }

  // ---- audio: capture at 16 kHz PCM16 in 20 ms frames ----

  // The capture processor averages the input over each output sample's span (a box low-pass,
  // enough for speech) and posts 320-sample Int16 frames with their RMS level.
  const CAPTURE_PROCESSOR = `
class DartmouthCapture extends AudioWorkletProcessor {
  constructor() { super(); this.step = sampleRate / ${CAPTURE_RATE}; this.next = this.step; this.pos = 0;
    this.acc = 0; this.cnt = 0; this.frame = new Int16Array(${FRAME_SAMPLES}); this.n = 0; this.sq = 0; }
  process(inputs) {
    const ch = inputs[0] && inputs[0][0];
    if (!ch) return true;
    for (let i = 0; i < ch.length; i++) {
      this.acc += ch[i]; this.cnt++; this.pos++;
      if (this.pos >= this.next) {
        const v = Math.max(-1, Math.min(1, this.acc / this.cnt));
        this.acc = 0; this.cnt = 0; this.next += this.step;
        this.frame[this.n++] = v < 0 ? v * 32768 : v * 32767; this.sq += v * v;
        if (this.n === ${FRAME_SAMPLES}) {
          this.port.postMessage({ pcm: this.frame.buffer, level: Math.sqrt(this.sq / ${FRAME_SAMPLES}) }, [this.frame.buffer]);
          this.frame = new Int16Array(${FRAME_SAMPLES}); this.n = 0; this.sq = 0;
        }
      }
    }
    if (this.pos > 1e9) { this.pos -= 1e9; this.next -= 1e9; }
    return true;
  }
}
registerProcessor('dartmouth-capture', DartmouthCapture);`;

  // startCapture feeds onFrame(ArrayBuffer, level) from the microphone stream. It uses an
  // AudioWorklet, or a ScriptProcessor where worklets are missing or blocked (a strict CSP).
  async function startCapture(ctx, stream, onFrame) {
    const source = ctx.createMediaStreamSource(stream);
    if (ctx.audioWorklet && window.AudioWorkletNode) {
      try {
        const url = URL.createObjectURL(new Blob([CAPTURE_PROCESSOR], { type: 'text/javascript' }));
        try { await ctx.audioWorklet.addModule(url); } finally { URL.revokeObjectURL(url); }
        const node = new AudioWorkletNode(ctx, 'dartmouth-capture', { numberOfInputs: 1, numberOfOutputs: 0, channelCount: 1 });
        node.port.onmessage = (e) => onFrame(e.data.pcm, e.data.level);
        source.connect(node);
        return () => { source.disconnect(); node.port.onmessage = null; };
      } catch (_) { /* fall through to the ScriptProcessor */ }
    }
    const node = ctx.createScriptProcessor(2048, 1, 1);
    const step = ctx.sampleRate / CAPTURE_RATE;
    let next = step, pos = 0, acc = 0, cnt = 0, n = 0, sq = 0;
    let frame = new Int16Array(FRAME_SAMPLES);
    node.onaudioprocess = (e) => {
      const ch = e.inputBuffer.getChannelData(0);
      for (let i = 0; i < ch.length; i++) {
        acc += ch[i]; cnt++; pos++;
        if (pos >= next) {
          const v = Math.max(-1, Math.min(1, acc / cnt));
          acc = 0; cnt = 0; next += step;
          frame[n++] = v < 0 ? v * 32768 : v * 32767; sq += v * v;
          if (n === FRAME_SAMPLES) {
            onFrame(frame.buffer, Math.sqrt(sq / FRAME_SAMPLES));
            frame = new Int16Array(FRAME_SAMPLES); n = 0; sq = 0;
          }
        }
      }
    };
    const sink = ctx.createGain();
    sink.gain.value = 0; // a ScriptProcessor only runs when connected to the output
    source.connect(node); node.connect(sink); sink.connect(ctx.destination);
    return () => { source.disconnect(); node.disconnect(); sink.disconnect(); node.onaudioprocess = null; };
  }

  // Player schedules PCM16 frames back to back on the audio clock, JITTER_S ahead of now when
  // starting (or after running dry), and can drop everything queued at once (barge-in).
  class Player {
    constructor(ctx, rate) {
      this.ctx = ctx;
      this.rate = rate || PLAYBACK_RATE;
      this.out = ctx.createGain();
      this.analyser = ctx.createAnalyser();
      this.analyser.fftSize = 512;
      this.out.connect(this.analyser);
      this.analyser.connect(ctx.destination);
      this.playhead = 0;
      this.sources = new Set();
      this.framesReceived = 0;
      this.framesPlayed = 0;
      this.flushes = 0;
      this.peak = 0;
      this.samples = new Float32Array(512);
    }
    push(buffer) {
      const pcm = new Int16Array(buffer, 0, buffer.byteLength >> 1);
      if (!pcm.length) return;
      this.framesReceived++;
      const audio = this.ctx.createBuffer(1, pcm.length, this.rate);
      const ch = audio.getChannelData(0);
      for (let i = 0; i < pcm.length; i++) ch[i] = pcm[i] / 32768;
      const now = this.ctx.currentTime;
      if (this.playhead < now + 0.005) this.playhead = now + JITTER_S;
      const src = this.ctx.createBufferSource();
      src.buffer = audio;
      src.connect(this.out);
      src.onended = () => {
        this.sources.delete(src);
        if (!src.flushed) this.framesPlayed++;
      };
      src.start(this.playhead);
      this.playhead += audio.duration;
      this.sources.add(src);
    }
    // A reply counts as playing through a short underrun too (frames late on a busy network),
    // so a barge-in during one is still a flush of that reply.
    get playing() { return this.sources.size > 0 || this.playhead > this.ctx.currentTime - UNDERRUN_S; }
    flush() {
      if (!this.playing) return;
      for (const src of this.sources) {
        src.flushed = true;
        try { src.stop(); } catch (_) { /* not started */ }
      }
      this.sources.clear();
      this.playhead = 0;
      this.flushes++;
    }
    level() {
      this.analyser.getFloatTimeDomainData(this.samples);
      let sq = 0;
      for (const v of this.samples) sq += v * v;
      const rms = Math.sqrt(sq / this.samples.length);
      this.peak = Math.max(this.peak, rms);
      return rms;
    }
    close() { this.flush(); this.out.disconnect(); this.analyser.disconnect(); }
  }

  // ---- voice transports: each calls widget.onVoiceEvent(frame) and widget.onVoiceEnd(reason) ----

  // WebSocketVoice: /api/v2/ws, PCM16 16 kHz up, PCM16 24 kHz down, JSON events both ways.
  class WebSocketVoice {
    constructor(w, stream, ctx) {
      this.w = w; this.stream = stream; this.ctx = ctx; this.kind = 'websocket';
      this.player = null; this.stopCapture = null; this.framesSent = 0; this.closed = false;
    }
    start() {
      const w = this.w;
      return new Promise((resolve, reject) => {
        const ws = new WebSocket(w.wsURL());
        ws.binaryType = 'arraybuffer';
        this.ws = ws;
        let started = false;
        ws.onopen = () => {
          const start = { type: 'session.start', agentId: w.agent,
            audio: { format: 'pcm16', sampleRate: CAPTURE_RATE, output: { format: 'pcm16', sampleRate: PLAYBACK_RATE } },
            voice: { tier: 'auto' } };
          if (w.sessionId) start.sessionId = w.sessionId;
          if (w.opts.voice) start.voice.voice = w.opts.voice;
          ws.send(JSON.stringify(start));
        };
        ws.onmessage = async (e) => {
          if (typeof e.data !== 'string') {
            if (this.player) this.player.push(e.data);
            return;
          }
          let f;
          try { f = JSON.parse(e.data); } catch (_) { return; }
          if (f.type === 'session.started' && !started) {
            started = true;
            const out = f.audio || {};
            this.player = new Player(this.ctx, out.sampleRate || PLAYBACK_RATE);
            try {
              this.stopCapture = await startCapture(this.ctx, this.stream, (pcm, level) => {
                w.setLevel(level);
                this.micPeak = Math.max(this.micPeak || 0, level);
                if (ws.readyState === WebSocket.OPEN) { ws.send(pcm); this.framesSent++; }
              });
            } catch (err) { reject(err); return; }
            w.onVoiceEvent(f);
            resolve();
            return;
          }
          if (f.type === 'speech.started' || f.type === 'response.interrupted') this.player && this.player.flush();
          if (f.type === 'error' && !started) { reject(Object.assign(new Error(f.message), { code: f.code })); return; }
          w.onVoiceEvent(f);
        };
        ws.onerror = () => { if (!started) reject(new Error('could not reach the voice service')); };
        ws.onclose = (e) => {
          this.cleanup();
          if (!started) reject(new Error('the voice connection closed (' + e.code + ')'));
          else if (!this.closed) w.onVoiceEnd(e.code === 1000 ? 'closed' : 'lost');
        };
      });
    }
    // A typed message is a barge-in: the gateway cuts the reply, and what is queued here stops now.
    sendText(text) { this.send({ type: 'text', id: 't' + Date.now(), text }); this.player && this.player.flush(); }
    interrupt() { this.send({ type: 'interrupt' }); this.player && this.player.flush(); }
    send(f) { if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(f)); }
    level() { return this.player ? this.player.level() : 0; }
    stats() {
      const p = this.player || {};
      return { framesSent: this.framesSent, micPeak: this.micPeak || 0, framesReceived: p.framesReceived || 0, framesPlayed: p.framesPlayed || 0,
        flushes: p.flushes || 0, outputPeak: p.peak || 0 };
    }
    cleanup() {
      if (this.stopCapture) { this.stopCapture(); this.stopCapture = null; }
      if (this.player) this.player.flush();
    }
    close() {
      this.closed = true;
      this.cleanup();
      if (this.ws && this.ws.readyState <= WebSocket.OPEN) this.ws.close(1000, 'bye');
    }
  }

  // WebRTCVoice: POST /api/v2/webrtc/offer; the microphone track goes up, the reply comes down
  // as a track played by an <audio> element, events on an "events" data channel.
  class WebRTCVoice {
    constructor(w, stream, ctx) {
      this.w = w; this.stream = stream; this.ctx = ctx; this.kind = 'webrtc'; this.closed = false;
      this.rtc = { packetsReceived: 0, bytesReceived: 0, audioEnergy: 0, samplesReceived: 0 };
    }
    async start() {
      const w = this.w;
      const pc = new RTCPeerConnection();
      this.pc = pc;
      for (const t of this.stream.getAudioTracks()) pc.addTrack(t, this.stream);
      const dc = pc.createDataChannel('events');
      this.dc = dc;
      const audio = w.audioElement();
      pc.ontrack = (e) => {
        const remote = e.streams[0] || new MediaStream([e.track]);
        audio.srcObject = remote;
        audio.play().catch(() => {});
        try {
          const src = this.ctx.createMediaStreamSource(remote);
          this.analyser = this.ctx.createAnalyser();
          this.analyser.fftSize = 512;
          src.connect(this.analyser); // measured only: the <audio> element plays it
          this.samples = new Float32Array(512);
        } catch (_) { /* level meter only */ }
      };
      const opened = new Promise((resolve, reject) => {
        dc.onopen = resolve;
        pc.onconnectionstatechange = () => {
          if (pc.connectionState === 'failed') reject(new Error('WebRTC connection failed'));
          if (this.ready && (pc.connectionState === 'failed' || pc.connectionState === 'closed') && !this.closed) w.onVoiceEnd('lost');
        };
      });
      dc.onmessage = (e) => {
        let f;
        try { f = JSON.parse(e.data); } catch (_) { return; }
        w.onVoiceEvent(f);
      };
      dc.onclose = () => { if (this.ready && !this.closed) w.onVoiceEnd('lost'); };
      await pc.setLocalDescription(await pc.createOffer());
      await iceGathered(pc, 2500);
      const body = { sdp: pc.localDescription.sdp, type: 'offer', agentId: w.agent, voice: { tier: 'auto' } };
      if (w.sessionId) body.sessionId = w.sessionId;
      if (w.opts.voice) body.voice.voice = w.opts.voice;
      const res = await fetch(w.url('/api/v2/webrtc/offer'), { method: 'POST', headers: w.headers(), body: JSON.stringify(body) });
      if (!res.ok) {
        const err = await apiError(res);
        throw Object.assign(new Error(err.message), { code: err.code, status: err.status });
      }
      const answer = await res.json();
      if (answer.sessionId) w.rememberSession(answer.sessionId);
      await pc.setRemoteDescription({ type: 'answer', sdp: answer.sdp });
      await withTimeout(opened, 8000, 'WebRTC did not connect');
      this.ready = true;
      this.poll = setInterval(() => this.readStats(), 500);
    }
    async readStats() {
      if (!this.pc) return;
      try {
        const report = await this.pc.getStats();
        report.forEach((s) => {
          if (s.type === 'inbound-rtp' && s.kind === 'audio') {
            this.rtc = { packetsReceived: s.packetsReceived || 0, bytesReceived: s.bytesReceived || 0,
              audioEnergy: s.totalAudioEnergy || 0, samplesReceived: s.totalSamplesReceived || 0 };
          }
        });
      } catch (_) { /* closed */ }
    }
    sendText(text) { this.send({ type: 'text', id: 't' + Date.now(), text }); }
    interrupt() { this.send({ type: 'interrupt' }); }
    send(f) { if (this.dc && this.dc.readyState === 'open') this.dc.send(JSON.stringify(f)); }
    level() {
      if (!this.analyser) return 0;
      this.analyser.getFloatTimeDomainData(this.samples);
      let sq = 0;
      for (const v of this.samples) sq += v * v;
      const rms = Math.sqrt(sq / this.samples.length);
      this.peak = Math.max(this.peak || 0, rms);
      return rms;
    }
    stats() { return Object.assign({ outputPeak: this.peak || 0 }, this.rtc); }
    close() {
      this.closed = true;
      clearInterval(this.poll);
      try { this.dc && this.dc.close(); } catch (_) { /* closed */ }
      try { this.pc && this.pc.close(); } catch (_) { /* closed */ }
      const audio = this.w.audioElement();
      audio.pause();
      audio.srcObject = null;
    }
  }

  function iceGathered(pc, ms) {
    if (pc.iceGatheringState === 'complete') return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => { clearTimeout(timer); pc.removeEventListener('icegatheringstatechange', check); resolve(); };
      const check = () => { if (pc.iceGatheringState === 'complete') done(); };
      const timer = setTimeout(done, ms); // answer with the candidates found so far
      pc.addEventListener('icegatheringstatechange', check);
    });
  }

  function withTimeout(promise, ms, message) {
    let timer;
    return Promise.race([promise, new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(message)), ms); })])
      .finally(() => clearTimeout(timer));
  }

  // NativeVoice: the browser listens (SpeechRecognition) and speaks (speechSynthesis); the
  // gateway gets text only, on a WebSocket session with voice tier "native", at no speech cost.
  class NativeVoice {
    constructor(w) {
      this.w = w; this.kind = 'native'; this.closed = false; this.pending = ''; this.spoken = 0; this.heard = 0;
    }
    static available() {
      return !!(window.SpeechRecognition || window.webkitSpeechRecognition);
    }
    start() {
      const w = this.w;
      return new Promise((resolve, reject) => {
        const ws = new WebSocket(w.wsURL());
        this.ws = ws;
        let started = false;
        ws.onopen = () => {
          const start = { type: 'session.start', agentId: w.agent, voice: { tier: 'native', textOnly: true } };
          if (w.sessionId) start.sessionId = w.sessionId;
          ws.send(JSON.stringify(start));
        };
        ws.onmessage = (e) => {
          if (typeof e.data !== 'string') return;
          let f;
          try { f = JSON.parse(e.data); } catch (_) { return; }
          if (f.type === 'session.started' && !started) {
            started = true;
            this.listen();
            w.onVoiceEvent(f);
            resolve();
            return;
          }
          if (f.type === 'error' && !started) { reject(Object.assign(new Error(f.message), { code: f.code })); return; }
          if (f.type === 'response.delta') this.speakSentences(f.text || '', false);
          if (f.type === 'response.done') this.speakSentences('', true);
          w.onVoiceEvent(f);
        };
        ws.onerror = () => { if (!started) reject(new Error('could not reach the gateway')); };
        ws.onclose = (e) => {
          this.stopListening();
          if (!started) reject(new Error('the connection closed (' + e.code + ')'));
          else if (!this.closed) w.onVoiceEnd(e.code === 1000 ? 'closed' : 'lost');
        };
      });
    }
    listen() {
      const SR = window.SpeechRecognition || window.webkitSpeechRecognition;
      const rec = new SR();
      this.rec = rec;
      rec.continuous = true;
      rec.interimResults = true;
      rec.lang = this.w.opts.lang || document.documentElement.lang || 'en-US';
      rec.onspeechstart = () => this.bargeIn();
      rec.onresult = (e) => {
        let interim = '';
        for (let i = e.resultIndex; i < e.results.length; i++) {
          const r = e.results[i];
          const text = r[0].transcript.trim();
          if (!text) continue;
          if (r.isFinal) {
            this.heard++;
            this.bargeIn();
            this.w.onVoiceEvent({ type: 'transcript.final', text, native: true });
            this.send({ type: 'text', id: 'n' + Date.now(), text });
          } else interim += text + ' ';
        }
        this.w.setStatus(interim ? 'Hearing: ' + interim.trim() : 'Listening…');
      };
      rec.onerror = (e) => {
        if (e.error === 'no-speech' || e.error === 'aborted') return;
        this.w.showError('Speech recognition: ' + e.error);
        if (e.error === 'not-allowed' || e.error === 'service-not-allowed' || e.error === 'network') this.w.stopVoice();
      };
      rec.onend = () => { if (!this.closed && this.rec === rec) { try { rec.start(); } catch (_) { /* already started */ } } };
      rec.start();
    }
    bargeIn() {
      if (window.speechSynthesis && (speechSynthesis.speaking || speechSynthesis.pending)) {
        speechSynthesis.cancel();
        this.pending = '';
        this.send({ type: 'interrupt' });
      }
    }
    // speakSentences speaks each finished sentence as it arrives, the rest when the reply ends.
    speakSentences(text, end) {
      this.pending += text;
      const parts = this.pending.split(/(?<=[.!?])\s+/);
      this.pending = end ? '' : parts.pop();
      if (end && parts.length === 0) return;
      for (const s of parts) this.speak(s);
    }
    speak(text) {
      text = text.replace(/\s\*\s/g, ' times ').replace(/\s=\s/g, ' equals ').trim(); // "6 * 7 = 42" read aloud
      if (!text || !window.speechSynthesis || !window.SpeechSynthesisUtterance) return;
      const u = new SpeechSynthesisUtterance(text);
      u.lang = this.w.opts.lang || document.documentElement.lang || 'en-US';
      speechSynthesis.speak(u);
      this.spoken++;
    }
    sendText(text) { this.send({ type: 'text', id: 't' + Date.now(), text }); }
    interrupt() { this.bargeIn(); }
    send(f) { if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(f)); }
    level() { return 0; }
    stats() { return { utterancesSpoken: this.spoken, transcriptsHeard: this.heard }; }
    stopListening() {
      const rec = this.rec;
      this.rec = null;
      if (rec) { try { rec.abort(); } catch (_) { /* stopped */ } }
    }
    close() {
      this.closed = true;
      this.stopListening();
      if (window.speechSynthesis) speechSynthesis.cancel();
      if (this.ws && this.ws.readyState <= WebSocket.OPEN) this.ws.close(1000, 'bye');
    }
  }

  // ---- the widget ----

  let instances = 0;

  class Widget {
    constructor(opts) {
      this.opts = opts;
      this.id = ++instances;
      this.agent = opts.agent || 'fam';
      this.gateway = (opts.gateway || location.origin).replace(/\/+$/, '');
      this.token = opts.token || '';
      this.busy = false;
      this.voice = null;
      this.voiceState = 'off';
      this.turns = new Map(); // voice turn -> assistant message element
      this.counters = { replies: 0, errors: 0, reconnects: 0, voiceErrors: 0 };
      this.sessionId = this.loadSession();
      this.render();
    }

    // -- config and storage --
    storageKey() { return 'dartmouth:session:' + this.agent + '@' + this.gateway; }
    loadSession() { const s = storage(); return (s && s.getItem(this.storageKey())) || ''; }
    rememberSession(id) {
      if (!id || id === this.sessionId) return;
      this.sessionId = id;
      const s = storage();
      if (s) s.setItem(this.storageKey(), id);
    }
    forgetSession() {
      this.sessionId = '';
      const s = storage();
      if (s) s.removeItem(this.storageKey());
    }
    url(path) { return this.gateway + path; }
    wsURL() {
      const u = new URL(this.url('/api/v2/ws'));
      u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
      if (this.token) u.searchParams.set('token', this.token);
      return u.toString();
    }
    headers() {
      const h = { 'Content-Type': 'application/json' };
      if (this.token) h.Authorization = 'Bearer ' + this.token;
      return h;
    }

    // -- DOM --
    render() {
      const o = this.opts;
      const target = o.target ? document.querySelector(o.target) : null;
      this.host = el('dartmouth-widget', { 'data-agent': this.agent });
      this.host.dartmouth = this;
      const root = this.host.attachShadow({ mode: 'open' });
      const style = el('style', { text: CSS });
      const title = o.title || 'Chat with us';
      const panelId = 'dm-panel-' + this.id;
      this.bubble = el('button', { class: 'bubble', type: 'button', 'aria-label': 'Open chat: ' + title,
        'aria-expanded': 'false', 'aria-controls': panelId, html: ICONS.chat });
      this.closeBtn = el('button', { class: 'close', type: 'button', 'aria-label': 'Close chat', html: ICONS.close });
      this.titleEl = el('h2', { id: panelId + '-title', text: title });
      this.log = el('div', { class: 'log', role: 'log', 'aria-live': 'polite', 'aria-label': 'Conversation', tabindex: '0' });
      this.status = el('p', { class: 'status', role: 'status', 'aria-live': 'polite' });
      this.input = el('input', { type: 'text', 'aria-label': 'Message', placeholder: 'Type a message…', autocomplete: 'off',
        maxlength: '8000', enterkeyhint: 'send' });
      this.micBtn = el('button', { class: 'mic', type: 'button', 'aria-label': 'Start voice conversation',
        'aria-pressed': 'false', html: ICONS.mic, hidden: o.mode === 'text' || !navigator.mediaDevices && o.mode !== 'native' });
      this.sendBtn = el('button', { class: 'send', type: 'submit', 'aria-label': 'Send message', html: ICONS.send });
      this.form = el('form', { 'aria-label': 'Send a message' }, [this.input, this.micBtn, this.sendBtn]);
      this.panel = el('section', { class: 'panel', id: panelId, role: o.target ? 'region' : 'dialog',
        'aria-labelledby': panelId + '-title', hidden: !target && o.open !== 'true' },
      [el('header', {}, [this.titleEl, this.closeBtn]), this.log, this.status, this.form]);
      this.root = el('div', { class: 'root' + (target ? ' inline' : '') + (o.position === 'left' ? ' left' : '') },
        target ? [this.panel] : [this.panel, this.bubble]);
      root.append(style, this.root);
      (target || document.body).append(this.host);

      this.bubble.addEventListener('click', () => (this.panel.hidden ? this.open() : this.close()));
      this.closeBtn.addEventListener('click', () => this.close());
      this.panel.addEventListener('keydown', (e) => {
        if (e.key === 'Escape' && !target) { e.stopPropagation(); this.close(); }
      });
      this.form.addEventListener('submit', (e) => {
        e.preventDefault();
        const text = this.input.value.trim();
        if (!text) return;
        this.input.value = '';
        this.send(text);
      });
      this.micBtn.addEventListener('click', () => (this.voice || this.voiceState === 'connecting' ? this.stopVoice() : this.startVoice()));
      if (o.greeting) this.addMessage('assistant', o.greeting).dataset.state = 'done';
      if (!this.panel.hidden) this.opened();
    }

    audioElement() {
      if (!this.audio) {
        this.audio = el('audio', { autoplay: true, class: 'sr', 'aria-hidden': 'true' });
        this.root.append(this.audio);
      }
      return this.audio;
    }

    open() {
      this.panel.hidden = false;
      this.bubble.setAttribute('aria-expanded', 'true');
      this.bubble.setAttribute('aria-label', 'Close chat');
      this.opened();
      this.input.focus();
    }
    opened() {
      if (this.historyLoaded) return;
      this.historyLoaded = true;
      if (this.sessionId) this.loadHistory();
    }
    close() {
      if (this.opts.target) return;
      this.panel.hidden = true;
      this.bubble.setAttribute('aria-expanded', 'false');
      this.bubble.setAttribute('aria-label', 'Open chat: ' + (this.opts.title || 'Chat with us'));
      this.bubble.focus();
    }

    async loadHistory() {
      try {
        const res = await fetch(this.url('/api/v2/sessions/' + encodeURIComponent(this.sessionId) + '/messages'), { headers: this.headers() });
        if (res.status === 404) { this.forgetSession(); return; }
        if (!res.ok) return;
        const body = await res.json();
        const first = this.log.firstChild;
        for (const m of body.messages || []) {
          if (m.role !== 'user' && m.role !== 'assistant') continue;
          const msg = this.addMessage(m.role, m.content, first);
          msg.dataset.state = 'done';
          msg.dataset.history = 'true';
        }
      } catch (_) { /* history is a convenience */ }
    }

    addMessage(role, text, before) {
      const msg = el('div', { class: 'msg ' + role, 'data-role': role }, [el('p', { class: 'text', text: text || '' }), el('p', { class: 'meta' })]);
      if (role === 'error') msg.setAttribute('role', 'alert');
      if (before) this.log.insertBefore(msg, before); else this.log.append(msg);
      this.log.scrollTop = this.log.scrollHeight;
      return msg;
    }
    appendText(msg, text) {
      msg.querySelector('.text').textContent += text;
      this.log.scrollTop = this.log.scrollHeight;
    }
    setMeta(msg, text) { msg.querySelector('.meta').textContent = this.opts.meta === 'true' ? text : ''; }
    setStatus(text) { this.status.textContent = text || ''; }
    showError(message) {
      this.counters.errors++;
      this.addMessage('error', message);
      this.emit('error', { message });
    }
    setLevel(level) { this.micBtn.style.setProperty('--dm-level', Math.min(1, level * 8).toFixed(2)); }
    emit(name, detail) { this.host.dispatchEvent(new CustomEvent('dartmouth:' + name, { detail, bubbles: true, composed: true })); }

    // -- text chat --
    async send(text) {
      text = String(text || '').trim();
      if (!text) return;
      if (this.voice) { // a live voice session answers typed text too, and speaks the reply
        this.addMessage('user', text).dataset.state = 'done';
        this.voice.sendText(text);
        return;
      }
      if (this.busy) return;
      this.busy = true;
      this.sendBtn.disabled = true;
      this.addMessage('user', text).dataset.state = 'done';
      const msg = this.addMessage('assistant', '');
      msg.dataset.state = 'streaming';
      msg.setAttribute('aria-busy', 'true');
      try {
        await this.streamReply(text, msg, true);
      } finally {
        msg.removeAttribute('aria-busy');
        this.busy = false;
        this.sendBtn.disabled = false;
      }
    }

    async streamReply(text, msg, retry) {
      const started = performance.now();
      const body = { agentId: this.agent, message: text };
      if (this.sessionId) body.sessionId = this.sessionId;
      let res;
      try {
        res = await fetch(this.url('/api/v2/chat/stream'), { method: 'POST', headers: this.headers(), body: JSON.stringify(body) });
      } catch (err) {
        msg.remove();
        this.showError('Could not reach the assistant. Check your connection and try again.');
        return;
      }
      if (!res.ok) {
        const err = await apiError(res);
        if (retry && this.sessionId && (err.code === 'session_not_found' || err.code === 'session_agent_mismatch')) {
          this.forgetSession(); // the session is gone (expired, or another agent's): start afresh
          return this.streamReply(text, msg, false);
        }
        msg.remove();
        this.showError(err.message || 'The assistant could not answer.');
        return;
      }
      this.rememberSession(res.headers.get('X-Session-Id'));
      let firstMs = null;
      let finished = false;
      try {
        for await (const ev of sseEvents(res.body)) {
          let data;
          try { data = JSON.parse(ev.data); } catch (_) { continue; }
          if (ev.event === 'delta') {
            if (firstMs == null) firstMs = performance.now() - started;
            this.appendText(msg, data.text || '');
          } else if (ev.event === 'done') {
            finished = true;
            this.rememberSession(data.sessionId);
            const m = data.metadata || {};
            const totalMs = performance.now() - started;
            msg.dataset.state = 'done';
            msg.dataset.provider = m.provider || '';
            this.setMeta(msg, [m.provider, m.model, m.cached ? 'cached' : '', firstMs != null ? 'first text ' + fmtMs(firstMs) : '', fmtMs(totalMs)].filter(Boolean).join(' · '));
            this.counters.replies++;
            this.emit('reply', { text: data.content, metadata: m, sessionId: data.sessionId, transport: 'sse',
              latency: { firstTextMs: firstMs, totalMs } });
          } else if (ev.event === 'error') {
            finished = true;
            msg.dataset.state = 'error';
            this.showError(data.message || 'The reply was cut off.');
          }
        }
      } catch (_) { /* the connection dropped */ }
      if (!finished) {
        msg.dataset.state = 'error';
        this.showError('The reply was cut off. Please try again.');
      }
    }

    // -- voice --
    setVoiceState(state, label) {
      this.voiceState = state;
      const on = state !== 'off';
      this.micBtn.setAttribute('aria-pressed', String(on));
      this.micBtn.setAttribute('aria-label', on ? 'Stop voice conversation' : 'Start voice conversation');
      this.setStatus(label || '');
      this.emit('voice', { state, transport: this.voice ? this.voice.kind : null });
    }

    async startVoice() {
      if (this.voice || this.voiceState === 'connecting') return;
      this.userStopped = false;
      this.setVoiceState('connecting', 'Connecting…');
      const mode = this.opts.mode === 'native' && NativeVoice.available() ? 'native' : 'server';
      try {
        if (mode === 'native') {
          const v = new NativeVoice(this);
          this.voice = v; // set first: a quick reply may come before start() resolves
          await v.start();
        } else {
          await this.startServerVoice();
        }
        if (this.userStopped) return;
        this.setVoiceState('listening', 'Listening…');
        this.meter = setInterval(() => {
          if (this.voice) this.voice.level();
        }, 100);
      } catch (err) {
        if (this.voice) { this.voice.close(); this.voice = null; }
        this.releaseAudio();
        this.setVoiceState('off');
        if (!this.userStopped) {
          this.counters.voiceErrors++;
          this.showError(err && err.name === 'NotAllowedError' ? 'Microphone access was denied.' : 'Voice is unavailable: ' + ((err && err.message) || err));
        }
      }
    }

    async startServerVoice() {
      if (!this.micStream) {
        // No automatic gain control: it pumps quiet speech up until it clips, which the
        // gateway's VAD (it learns the noise floor) and recognizers handle worse than the raw
        // level. Echo cancellation stays on, or the agent's own voice would barge in.
        this.micStream = await navigator.mediaDevices.getUserMedia({ audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true, autoGainControl: false } });
      }
      if (!this.ctx) {
        const AC = window.AudioContext || window.webkitAudioContext;
        this.ctx = new AC({ latencyHint: 'interactive' });
      }
      if (this.ctx.state === 'suspended') await this.ctx.resume();
      const transport = this.opts.transport || 'auto';
      if (transport !== 'websocket' && window.RTCPeerConnection) {
        const rtc = new WebRTCVoice(this, this.micStream, this.ctx);
        this.voice = rtc;
        try {
          await rtc.start();
          return;
        } catch (err) {
          rtc.close();
          this.voice = null;
          if (transport === 'webrtc' || this.userStopped) throw err;
          this.fallbackReason = (err && err.message) || String(err); // then the WebSocket
        }
      }
      const ws = new WebSocketVoice(this, this.micStream, this.ctx);
      this.voice = ws;
      await ws.start();
    }

    stopVoice() {
      this.userStopped = true;
      clearInterval(this.meter);
      clearTimeout(this.reconnectTimer);
      if (this.voice) { this.voice.close(); this.voice = null; }
      this.releaseAudio();
      this.setLevel(0);
      this.setVoiceState('off');
    }

    releaseAudio() {
      if (this.micStream) { for (const t of this.micStream.getTracks()) t.stop(); this.micStream = null; }
      if (this.ctx) { this.ctx.close().catch(() => {}); this.ctx = null; }
    }

    // onVoiceEnd: the connection dropped; reconnect with the same session, a few times.
    onVoiceEnd(reason) {
      const v = this.voice;
      if (!v || this.userStopped) return;
      clearInterval(this.meter);
      v.close();
      this.voice = null;
      const attempt = (this.reconnects || 0) + 1;
      if (reason === 'closed' || attempt > 3) {
        this.reconnects = 0;
        this.releaseAudio();
        this.setVoiceState('off', reason === 'closed' ? '' : 'Voice connection lost.');
        return;
      }
      this.reconnects = attempt;
      this.counters.reconnects++;
      this.setVoiceState('connecting', 'Reconnecting…');
      this.reconnectTimer = setTimeout(() => {
        this.voiceState = 'off';
        this.startVoice().then(() => { if (this.voice) this.reconnects = 0; });
      }, 500 * 2 ** (attempt - 1));
    }

    turnMessage(turn) {
      const key = turn || 'current';
      let msg = this.turns.get(key);
      if (!msg || msg.dataset.state !== 'streaming') {
        msg = this.addMessage('assistant', '');
        msg.dataset.state = 'streaming';
        msg.dataset.voice = 'true';
        this.turns.set(key, msg);
      }
      return msg;
    }

    onVoiceEvent(f) {
      switch (f.type) {
        case 'session.started':
          this.rememberSession(f.sessionId);
          break;
        case 'speech.started':
          this.setStatus('Listening…');
          break;
        case 'speech.stopped':
          this.setStatus('Thinking…');
          break;
        case 'transcript.final': {
          if (!f.text) break;
          const msg = this.addMessage('user', f.text);
          msg.dataset.state = 'done';
          msg.dataset.voice = 'true';
          this.emit('transcript', { text: f.text, turn: f.turn, stt: f.stt || null });
          break;
        }
        case 'response.delta':
          this.appendText(this.turnMessage(f.turn), f.text || '');
          this.setStatus('Speaking…');
          break;
        case 'response.done': {
          const msg = this.turnMessage(f.turn);
          if (!msg.querySelector('.text').textContent && f.text) this.appendText(msg, f.text);
          msg.dataset.state = 'done';
          if (f.sessionId) this.rememberSession(f.sessionId);
          const m = f.metadata || {};
          const l = f.latency || {};
          msg.dataset.provider = m.provider || '';
          this.setMeta(msg, [m.provider, m.model, l.firstAudioMs ? 'voice-to-voice ' + fmtMs(l.firstAudioMs) : '',
            l.firstTokenMs ? 'first text ' + fmtMs(l.firstTokenMs) : ''].filter(Boolean).join(' · '));
          this.counters.replies++;
          this.setStatus('Listening…');
          this.emit('reply', { text: f.text, metadata: m, sessionId: f.sessionId, transport: this.voice ? this.voice.kind : null, latency: l, turn: f.turn });
          break;
        }
        case 'response.interrupted': {
          const msg = this.turns.get(f.turn || 'current');
          if (msg) { msg.dataset.state = 'interrupted'; this.setMeta(msg, 'interrupted'); }
          break;
        }
        case 'error':
          if (f.code === 'session_not_found') this.forgetSession();
          if (f.code === 'no_speech') break;
          this.counters.voiceErrors++;
          this.showError(f.message || 'Voice error');
          break;
        default:
      }
    }

    // -- script API --
    setAgent(id) {
      if (!id || id === this.agent) return;
      const voiceOn = !!this.voice;
      if (voiceOn) this.stopVoice();
      this.agent = id;
      this.host.setAttribute('data-agent', id);
      this.sessionId = this.loadSession();
      this.historyLoaded = false;
      this.log.textContent = '';
      this.turns.clear();
      this.opened();
    }
    setToken(token) { this.token = token || ''; }
    stats() {
      return Object.assign({ agent: this.agent, sessionId: this.sessionId, voiceState: this.voiceState,
        transport: this.voice ? this.voice.kind : null, fallbackReason: this.fallbackReason || null }, this.counters,
      this.voice ? this.voice.stats() : {});
    }
  }

  function optionsFrom(s) {
    const get = (name) => (s && (s.getAttribute('data-' + name) || s.getAttribute(name))) || '';
    let gateway = get('gateway');
    if (!gateway && s && s.src) gateway = new URL(s.src, location.href).origin;
    return {
      agent: get('agent') || 'fam', gateway, token: get('token'), mode: get('mode') || 'server', transport: get('transport') || 'auto',
      voice: get('voice'), lang: get('lang'), title: get('title'), greeting: get('greeting'), position: get('position'),
      target: get('target'), open: get('open'), meta: get('meta'),
    };
  }

  const api = window.Dartmouth = window.Dartmouth || { widgets: [] };
  api.mount = (opts) => {
    const w = new Widget(Object.assign(optionsFrom(null), opts || {}));
    api.widgets.push(w);
    return w;
  };
  if (script && script.getAttribute('data-manual') !== 'true') {
    const mount = () => api.mount(optionsFrom(script));
    if (document.body) mount(); else document.addEventListener('DOMContentLoaded', mount, { once: true });
  }
})();
