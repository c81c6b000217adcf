// Browser tests of the widget, the demo page and the dashboard, run by
// gateway/web_browser_test.go (TestWebInBrowser), which starts the gateway and the page server
// and passes their addresses in the environment:
//
//   DM_CHROMIUM   the Chromium executable (Debian's /usr/bin/chromium)
//   DM_GATEWAY    the gateway's base URL
//   DM_PAGES      another origin serving /widget.html and /native.html (a customer's site
//                 embedding the widget) and POST /release (the next chunk of a gated reply)
//   DM_WAV        the fake microphone's WAV (48 kHz mono)
//   DM_ADMIN_KEY  the gateway's admin key
//   DM_SENTENCE   what the WAV says
//   DM_REPLY      the LLM's reply, chunk by chunk, separated by \x1f
//   DM_OUT        where screenshots go
//
// One Chromium runs all of them, launched with a fake microphone.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';
import { chromium } from 'playwright-core';

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(name + ' is not set: run these tests through go test -run TestWebInBrowser ./gateway/');
  return v;
};
const GATEWAY = env('DM_GATEWAY');
const PAGES = env('DM_PAGES');
const ADMIN_KEY = env('DM_ADMIN_KEY');
const SENTENCE = env('DM_SENTENCE');
const REPLY = env('DM_REPLY').split('\x1f');
const OUT = env('DM_OUT');

let browser;

before(async () => {
  browser = await chromium.launch({
    executablePath: env('DM_CHROMIUM'),
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream',
      '--use-file-for-fake-audio-capture=' + env('DM_WAV'), '--autoplay-policy=no-user-gesture-required'],
  });
});

after(async () => {
  if (browser) await browser.close();
});

// openPage opens a page in its own context and records every console error and page error.
async function openPage(url, opts = {}) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 }, ...opts });
  const page = await context.newPage();
  const errors = [];
  page.on('console', (m) => { if (m.type() === 'error') errors.push('console: ' + m.text()); });
  page.on('pageerror', (e) => errors.push('page error: ' + e.message));
  if (url) await page.goto(url);
  return { context, page, errors };
}

const stats = (page) => page.evaluate(() => window.Dartmouth.widgets[0].stats());

async function waitStats(page, predicate, what, timeout = 30000) {
  try {
    await page.waitForFunction(predicate, null, { timeout, polling: 50 });
  } catch (err) {
    throw new Error('timed out waiting for ' + what + '; widget stats: ' + JSON.stringify(await stats(page)));
  }
}

async function hold(on) {
  const res = await fetch(PAGES + '/hold', { method: on ? 'POST' : 'DELETE' });
  assert.equal(res.status, 204);
}

async function release() {
  const res = await fetch(PAGES + '/release', { method: 'POST' });
  assert.equal(res.status, 204, 'the gated reply should be waiting for its next chunk');
}

test('the widget streams a typed reply in parts, from a plain page on another origin', async () => {
  const { context, page, errors } = await openPage(PAGES + '/widget.html');
  const widget = page.locator('dartmouth-widget');
  const bubble = widget.locator('button.bubble');
  await bubble.waitFor();

  // Keyboard and ARIA: the bubble opens the dialog with Enter, focus goes to the message box,
  // Escape closes it and gives focus back to the bubble.
  assert.equal(await bubble.getAttribute('aria-expanded'), 'false');
  assert.match(await bubble.getAttribute('aria-label'), /Open chat/);
  await bubble.focus();
  await page.keyboard.press('Enter');
  const panel = widget.locator('[role="dialog"]');
  await panel.waitFor({ state: 'visible' });
  assert.equal(await bubble.getAttribute('aria-expanded'), 'true');
  assert.equal(await page.evaluate(() => document.querySelector('dartmouth-widget').shadowRoot.activeElement.getAttribute('aria-label')), 'Message');
  await page.keyboard.press('Escape');
  await panel.waitFor({ state: 'hidden' });
  assert.equal(await page.evaluate(() => document.querySelector('dartmouth-widget').shadowRoot.activeElement.className), 'bubble');
  await page.keyboard.press('Enter');
  await panel.waitFor({ state: 'visible' });
  for (const role of ['log', 'status']) assert.equal(await widget.locator(`[role="${role}"]`).count(), 1, 'a ' + role + ' region');
  assert.equal(await widget.locator('button.mic').getAttribute('aria-pressed'), 'false');

  // No CSS leaks either way: the page's aggressive rules do not reach into the widget, and the
  // widget's do not reach the page.
  const styles = await page.evaluate(() => {
    const root = document.querySelector('dartmouth-widget').shadowRoot;
    const send = getComputedStyle(root.querySelector('button.send'));
    const p = getComputedStyle(document.querySelector('p'));
    return { sendBorder: send.borderTopWidth, sendColor: send.color, pageBorder: p.borderTopWidth, pageColor: p.color };
  });
  assert.equal(styles.sendBorder, '0px', 'the page styled a button inside the widget');
  assert.notEqual(styles.sendColor, 'rgb(255, 0, 0)');
  assert.equal(styles.pageBorder, '5px', "the widget's styles reached the page");
  assert.equal(styles.pageColor, 'rgb(255, 0, 0)');

  // The reply appears part by part: each chunk is on the page while the next does not exist yet.
  await page.keyboard.type('Please explain slowly what you will do');
  await page.keyboard.press('Enter');
  const reply = widget.locator('.msg.assistant').last();
  const seen = [];
  for (let i = 1; i <= REPLY.length; i++) {
    const want = REPLY.slice(0, i).join('');
    await page.waitForFunction((w) => {
      const msgs = document.querySelector('dartmouth-widget').shadowRoot.querySelectorAll('.msg.assistant');
      return msgs.length && msgs[msgs.length - 1].querySelector('.text').textContent === w;
    }, want, { timeout: 15000, polling: 20 });
    const state = await reply.getAttribute('data-state');
    seen.push(state);
    if (i < REPLY.length) {
      assert.equal(state, 'streaming', 'part ' + i + ' of ' + REPLY.length + ' should show before the reply completes');
      assert.equal(await reply.getAttribute('aria-busy'), 'true');
      await release();
    }
  }
  await page.waitForFunction(() => {
    const msgs = document.querySelector('dartmouth-widget').shadowRoot.querySelectorAll('.msg.assistant');
    return msgs[msgs.length - 1].dataset.state === 'done';
  }, null, { timeout: 15000 });
  assert.ok(seen.filter((s) => s === 'streaming').length >= REPLY.length - 1, 'parts seen while streaming: ' + seen);
  assert.equal(await reply.getAttribute('data-provider'), 'paced');
  assert.match(await reply.locator('.meta').textContent(), /paced · gpt-4o-mini · first text \d+ ms/);

  // The session survives a reload: same id from sessionStorage, history shown, and the next
  // message continues it.
  const { sessionId } = await stats(page);
  assert.match(sessionId, /^ses_/);
  await page.reload();
  await widget.locator('button.bubble').click();
  await page.waitForFunction(() => document.querySelector('dartmouth-widget').shadowRoot.querySelectorAll('.msg[data-history]').length >= 2, null, { timeout: 10000 });
  assert.equal((await stats(page)).sessionId, sessionId);
  const sent = page.waitForResponse((r) => r.url().endsWith('/api/v2/chat/stream'));
  await widget.locator('input').fill('what is 6 times 7?');
  await widget.locator('input').press('Enter');
  const res = await sent;
  assert.equal(res.headers()['x-session-id'], sessionId);
  await page.waitForFunction(() => {
    const msgs = document.querySelector('dartmouth-widget').shadowRoot.querySelectorAll('.msg.assistant');
    return msgs[msgs.length - 1].dataset.state === 'done';
  }, null, { timeout: 15000 });

  assert.deepEqual(errors, [], "the widget's page logged errors");
  await context.close();
});

test('widget.js is under 50 KB gzipped, with an ETag and cache headers', async () => {
  const res = await fetch(GATEWAY + '/widget.js');
  assert.equal(res.status, 200);
  const body = Buffer.from(await res.arrayBuffer());
  const gz = gzipSync(body, { level: 9 }).length;
  assert.ok(gz < 50 * 1024, 'widget.js is ' + gz + ' bytes gzipped');
  const etag = res.headers.get('etag');
  assert.match(etag, /^"[0-9a-f]+(-gz)?"$/);
  assert.equal(res.headers.get('cache-control'), 'public, max-age=3600');
  const again = await fetch(GATEWAY + '/widget.js', { headers: { 'If-None-Match': etag } });
  assert.equal(again.status, 304);
  console.log(`widget.js: ${body.length} bytes, ${gz} gzipped`);
});

// talk clicks the microphone and waits for the sentence's transcript and a finished spoken
// reply; it returns the transcript shown.
async function talk(page, widget) {
  await widget.locator('button.mic').click();
  await waitStats(page, () => window.Dartmouth.widgets[0].stats().voiceState === 'listening', 'the voice session');
  const heard = widget.locator('.msg.user[data-voice]').first();
  await heard.waitFor({ timeout: 30000 });
  await page.waitForFunction(() => [...document.querySelector('dartmouth-widget').shadowRoot.querySelectorAll('.msg.assistant[data-voice]')]
    .some((m) => m.querySelector('.text').textContent.length > 0), null, { timeout: 20000 });
  return (await heard.textContent()).trim();
}

function checkTranscript(text) {
  assert.ok(text.length > 0, 'a transcript is shown');
  const words = SENTENCE.split(' ');
  const common = text.split(/\s+/).filter((w) => words.includes(w)).length;
  assert.ok(common >= 3, `the transcript "${text}" should be the spoken "${SENTENCE}"`);
  console.log(`heard: "${text}"${text === SENTENCE ? ' (exact)' : ''}`);
}

test('voice over WebRTC: the microphone reaches the gateway, the transcript shows, the reply track plays', async () => {
  const { context, page, errors } = await openPage(PAGES + '/widget.html');
  const widget = page.locator('dartmouth-widget');
  await widget.locator('button.bubble').click();
  const text = await talk(page, widget);
  checkTranscript(text);
  let s = await stats(page);
  assert.equal(s.transport, 'webrtc', 'automatic transport picks WebRTC when the offer succeeds');
  await waitStats(page, () => {
    const s = window.Dartmouth.widgets[0].stats();
    return s.packetsReceived > 25 && s.audioEnergy > 0 && s.outputPeak > 0.001;
  }, 'reply audio on the WebRTC track');
  s = await stats(page);
  console.log('webrtc:', JSON.stringify(s));
  assert.equal(await widget.locator('button.mic').getAttribute('aria-pressed'), 'true');
  await widget.locator('button.mic').click();
  assert.equal((await stats(page)).voiceState, 'off');
  assert.deepEqual(errors, [], 'the page logged errors');
  await context.close();
});

test('voice over WebSocket when WebRTC fails: audio frames out, transcript, reply played, barge-in flushes it', async () => {
  const { context, page, errors } = await openPage(null);
  // The reply to the spoken sentence holds before its last words, so it is still running on the
  // gateway when the test barges in below, however late this (busy) browser plays it.
  await hold(true);
  const sentFrames = [];
  page.on('websocket', (ws) => ws.on('framesent', (f) => { if (typeof f.payload === 'string') sentFrames.push(JSON.parse(f.payload)); }));
  // The WebRTC offer fails: the widget must fall back to the WebSocket.
  await page.route(GATEWAY + '/api/v2/webrtc/offer', (route) => route.fulfill({
    status: 503, contentType: 'application/json', body: '{"error":{"code":"service_unavailable","message":"WebRTC is down for this test"}}' }));
  await page.goto(PAGES + '/widget.html');
  const widget = page.locator('dartmouth-widget');
  await widget.locator('button.bubble').click();
  const text = await talk(page, widget);
  checkTranscript(text);
  const start = sentFrames.find((f) => f.type === 'session.start');
  assert.deepEqual(start.audio, { format: 'pcm16', sampleRate: 16000, output: { format: 'pcm16', sampleRate: 24000 } });
  let s = await stats(page);
  assert.equal(s.transport, 'websocket');
  assert.match(s.fallbackReason, /WebRTC is down/);
  assert.ok(s.framesSent > 50, 'microphone frames sent: ' + s.framesSent);
  await waitStats(page, () => {
    const s = window.Dartmouth.widgets[0].stats();
    return s.framesPlayed > 10 && s.outputPeak > 0.001;
  }, 'reply audio played through Web Audio');

  // Barge-in: a new turn while the reply plays (typed here; speech does the same) makes the
  // gateway interrupt it, and the widget drops the audio it had queued.
  const before = await stats(page);
  await widget.locator('input').fill('stop');
  await widget.locator('input').press('Enter');
  await waitStats(page, () => window.Dartmouth.widgets[0].stats().flushes > 0, 'the queued audio to be flushed');
  await widget.locator('.msg.assistant[data-state="interrupted"]').first().waitFor({ timeout: 10000 });
  s = await stats(page);
  console.log('websocket:', JSON.stringify(s), 'played before barge-in:', before.framesPlayed);
  assert.ok(sentFrames.some((f) => f.type === 'text' && f.text === 'stop'));
  await widget.locator('button.mic').click();
  assert.deepEqual(errors.filter((e) => !/status of 503/.test(e)), [], 'the page logged errors');
  await hold(false);
  await context.close();
});

test('native mode: the browser recognises and speaks; the gateway gets text on the native tier', async () => {
  const { context, page, errors } = await openPage(null);
  // Chromium's recognizer needs Google's servers, which a test cannot reach: stand in for the
  // browser's speech APIs, as a browser that has them would behave.
  await page.addInitScript(() => {
    window.__spoken = [];
    class FakeRecognition {
      start() {
        if (window.__recognised) return;
        window.__recognised = true;
        setTimeout(() => {
          this.onspeechstart && this.onspeechstart();
          const alt = { transcript: 'what is 6 times 7', confidence: 0.93 };
          const result = Object.assign([alt], { isFinal: true });
          this.onresult({ resultIndex: 0, results: [result] });
        }, 100);
      }
      stop() {}
      abort() {}
    }
    for (const name of ['SpeechRecognition', 'webkitSpeechRecognition']) {
      Object.defineProperty(window, name, { value: FakeRecognition, configurable: true });
    }
    Object.defineProperty(window, 'speechSynthesis', { configurable: true, value: {
      speaking: false, pending: false, cancel() {}, speak(u) { window.__spoken.push(u.text); } } });
  });
  const sentFrames = [];
  page.on('websocket', (ws) => ws.on('framesent', (f) => { if (typeof f.payload === 'string') sentFrames.push(JSON.parse(f.payload)); }));
  await page.goto(PAGES + '/native.html');
  const widget = page.locator('dartmouth-widget');
  await widget.locator('button.bubble').click();
  await widget.locator('button.mic').click();
  await widget.locator('.msg.user[data-voice]').first().waitFor({ timeout: 15000 });
  assert.equal((await widget.locator('.msg.user[data-voice]').first().textContent()).trim(), 'what is 6 times 7');
  await widget.locator('.msg.assistant[data-voice][data-state="done"]').first().waitFor({ timeout: 15000 });
  const shown = (await widget.locator('.msg.assistant[data-voice]').last().locator('.text').textContent()).trim();
  assert.equal(shown, REPLY.join('').trim(), 'the reply is shown');
  await page.waitForFunction((n) => window.__spoken.length >= n, REPLY.join('').split(/(?<=[.!?])\s+/).length, { timeout: 5000 });
  assert.equal(await page.evaluate(() => window.__spoken.join(' ')), REPLY.join('').trim(), 'the reply is spoken by the browser, sentence by sentence');
  const start = sentFrames.find((f) => f.type === 'session.start');
  assert.equal(start.voice.tier, 'native');
  assert.equal(start.audio, undefined, 'native mode sends no audio');
  assert.ok(sentFrames.some((f) => f.type === 'text' && f.text === 'what is 6 times 7'));
  await widget.locator('button.mic').click();
  assert.deepEqual(errors, [], 'the page logged errors');
  await context.close();
});

test('the dashboard refuses without the admin key, then shows live numbers and charts', async () => {
  // A few chat turns, one of them repeated so the response cache answers it.
  for (const message of ['How do budgets work?', 'How do budgets work?', 'what is 12 * 12?']) {
    const res = await fetch(GATEWAY + '/api/v2/chat', { method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ agentId: 'fam', message }) });
    assert.equal(res.status, 200);
  }
  const refused = await fetch(GATEWAY + '/api/v2/dashboard');
  assert.equal(refused.status, 401);
  assert.equal((await refused.json()).error.code, 'unauthorized');

  const { context, page, errors } = await openPage(GATEWAY + '/dashboard?interval=1');
  await page.locator('#login').waitFor({ state: 'visible' });
  assert.equal(await page.locator('#board').isVisible(), false);
  await page.locator('#key').fill('not-the-admin-key-0000');
  await page.locator('#login-form button').click();
  await page.waitForFunction(() => document.getElementById('login-error').textContent.length > 0);
  assert.equal(await page.locator('#board').isVisible(), false, 'a wrong key must not open the dashboard');

  await page.locator('#key').fill(ADMIN_KEY);
  await page.locator('#login-form button').click();
  await page.locator('#board').waitFor({ state: 'visible' });
  assert.equal(await page.locator('#login').isVisible(), false, 'the login form goes away');
  const value = (metric) => page.locator(`[data-metric="${metric}"]`).first().getAttribute('data-value').then(Number);
  await page.waitForFunction(() => Number(document.querySelector('[data-metric="requests.total"]').dataset.value) > 0);
  const numbers = {
    requests: await value('requests.total'),
    repliesToday: await value('costs.today.requests'),
    usdToday: await value('costs.today.usd'),
    llmHitRate: Number(await page.locator('#llm-cache text').getAttribute('data-value')),
    ttsHitRate: Number(await page.locator('#tts-cache text').getAttribute('data-value')),
    chatFirstTokenP50: Number(await page.locator('#chart-latency').getAttribute('data-chat-first-token')),
    voiceToVoiceP50: Number(await page.locator('#chart-latency').getAttribute('data-voice-to-voice')),
    voiceTurns: (await value('voiceTurns.done')) + (await value('voiceTurns.interrupted')),
  };
  console.log('dashboard:', JSON.stringify(numbers));
  assert.ok(numbers.requests >= 8, 'API requests counted');
  assert.ok(numbers.repliesToday >= 6, 'replies today from the cost ledger');
  assert.ok(numbers.usdToday > 0, 'priced turns cost something');
  assert.ok(numbers.llmHitRate > 0, 'the repeated question was a cache hit');
  assert.ok(numbers.chatFirstTokenP50 > 0, 'streamed chat first-token latency');
  assert.ok(numbers.voiceToVoiceP50 > 0 && numbers.voiceTurns >= 1, 'voice-to-voice latency from the voice turns');
  // Charts, not just tables: SVG drawn for latency, spending and the cache donuts; the
  // requests chart fills in as polls arrive.
  for (const id of ['chart-latency', 'chart-days', 'llm-cache', 'tts-cache']) {
    assert.ok(await page.locator(`#${id} svg`).count() > 0, id + ' is drawn');
  }
  await page.waitForFunction(() => document.querySelector('#chart-requests svg path'), null, { timeout: 10000 });
  assert.ok(await page.locator('#llm-providers li').count() >= 1);
  assert.match(await page.locator('#llm-providers').textContent(), /paced/);
  assert.match(await page.locator('#voice-providers').textContent(), /pocketsphinx/);
  await page.screenshot({ path: OUT + '/dashboard.png', fullPage: true });

  // Signing out shows the login again.
  await page.locator('#logout').click();
  await page.locator('#login').waitFor({ state: 'visible' });
  assert.deepEqual(errors.filter((e) => !/401|Unauthorized/.test(e)), [], 'the dashboard logged errors');
  await context.close();
});

test('the demo page and the API reference render', async () => {
  const { context, page, errors } = await openPage(GATEWAY + '/');
  await page.waitForFunction(() => document.getElementById('agent').options.length > 0);
  assert.equal(await page.locator('#agent').inputValue(), 'fam');
  const widget = page.locator('#chat dartmouth-widget');
  await widget.locator('input').fill('what is 6 times 7?');
  await widget.locator('input').press('Enter');
  await page.waitForFunction(() => document.getElementById('f-provider').textContent !== '—', null, { timeout: 15000 });
  assert.notEqual(await page.locator('#f-first').textContent(), '—');
  assert.deepEqual(errors, [], 'the demo page logged errors');
  await context.close();

  const docs = await openPage(GATEWAY + '/docs');
  await docs.page.waitForSelector('#op-chatStream');
  assert.ok(await docs.page.locator('section.op').count() > 40, 'every operation rendered');
  assert.match(await docs.page.locator('#op-websocket').textContent(), /session\.start/);
  assert.deepEqual(docs.errors, [], 'the docs page logged errors');
  await docs.context.close();
});
