// The demo page: the widget rendered inline, an agent picker, and the last reply's facts.
(() => {
  'use strict';
  const $ = (id) => document.getElementById(id);
  const store = (() => { try { return window.sessionStorage; } catch (_) { return null; } })();
  const saved = (k) => (store && store.getItem('dartmouth:demo:' + k)) || '';
  const save = (k, v) => store && store.setItem('dartmouth:demo:' + k, v);

  const agentSel = $('agent'), modeSel = $('mode'), transportSel = $('transport'), tokenIn = $('token');
  modeSel.value = saved('mode') || 'server';
  transportSel.value = saved('transport') || 'auto';
  tokenIn.value = saved('token');

  const widget = window.Dartmouth.mount({
    target: '#chat', agent: saved('agent') || 'fam', title: 'Dartmouth', meta: 'true',
    mode: modeSel.value, transport: transportSel.value, token: tokenIn.value,
    greeting: 'Hello! Ask me anything, or press the microphone and talk.',
  });

  function headers() {
    return tokenIn.value ? { Authorization: 'Bearer ' + tokenIn.value } : {};
  }

  async function loadAgents() {
    try {
      const res = await fetch('/api/v2/agents', { headers: headers() });
      if (!res.ok) throw new Error((await res.json()).error.message);
      const { agents } = await res.json();
      agentSel.textContent = '';
      for (const a of agents) agentSel.add(new Option(a.name + ' (' + a.id + ')', a.id));
      agentSel.value = widget.agent;
      if (!agentSel.value && agents.length) { agentSel.value = agents[0].id; widget.setAgent(agents[0].id); }
      describe(agents);
      agentSel.onchange = () => { save('agent', agentSel.value); widget.setAgent(agentSel.value); describe(agents); };
    } catch (err) {
      $('agent-desc').textContent = 'Could not list the agents: ' + err.message;
    }
  }
  function describe(agents) {
    const a = agents.find((x) => x.id === agentSel.value);
    $('agent-desc').textContent = a ? a.description : '';
  }

  modeSel.onchange = () => { save('mode', modeSel.value); widget.stopVoice(); widget.opts.mode = modeSel.value; };
  transportSel.onchange = () => { save('transport', transportSel.value); widget.stopVoice(); widget.opts.transport = transportSel.value; };
  tokenIn.onchange = () => { save('token', tokenIn.value); widget.setToken(tokenIn.value); loadAgents(); };

  const ms = (v) => (v == null || !isFinite(v) ? '—' : Math.round(v) + ' ms');
  widget.host.addEventListener('dartmouth:reply', (e) => {
    const d = e.detail, m = d.metadata || {}, l = d.latency || {};
    $('f-provider').textContent = m.provider || '—';
    $('f-model').textContent = m.model || '—';
    $('f-transport').textContent = d.transport || '—';
    $('f-first').textContent = ms(l.firstTextMs != null ? l.firstTextMs : l.firstTokenMs);
    $('f-v2v').textContent = ms(l.firstAudioMs);
    $('f-total').textContent = ms(l.totalMs != null ? l.totalMs : m.processingMs);
    $('f-cost').textContent = m.cost != null ? '$' + m.cost.toFixed(6) : '—';
    $('f-cached').textContent = m.cached ? 'yes' : 'no';
    $('f-session').textContent = d.sessionId || widget.sessionId || '—';
  });
  widget.host.addEventListener('dartmouth:transcript', (e) => {
    const li = document.createElement('li');
    li.textContent = e.detail.text;
    $('transcripts').prepend(li);
  });
  loadAgents();
})();
