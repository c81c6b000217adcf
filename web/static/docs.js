// A small, self-contained OpenAPI 3.1 renderer for /docs: paths grouped by tag, with their
// parameters, request bodies, responses and schemas (no CDN, no library).
(() => {
  'use strict';
  const METHODS = ['get', 'head', 'post', 'put', 'patch', 'delete', 'options'];
  let spec;

  function h(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === 'class') e.className = v; else e.setAttribute(k, v);
    }
    for (const c of children.flat()) if (c != null && c !== false) e.append(c);
    return e;
  }

  // md renders the little Markdown the descriptions use: paragraphs, "- " lists, `code`, **bold**.
  function md(text) {
    const out = h('div', { class: 'desc' });
    for (const block of String(text || '').split(/\n{2,}/)) {
      const lines = block.split('\n');
      if (lines.every((l) => /^\s*- /.test(l))) {
        out.append(h('ul', {}, lines.map((l) => h('li', {}, inline(l.replace(/^\s*- /, ''))))));
      } else {
        out.append(h('p', {}, inline(block)));
      }
    }
    return out;
  }
  function inline(text) {
    const parts = [];
    const re = /`([^`]+)`|\*\*([^*]+)\*\*/g;
    let last = 0, m;
    while ((m = re.exec(text))) {
      if (m.index > last) parts.push(text.slice(last, m.index));
      parts.push(m[1] != null ? h('code', {}, m[1]) : h('strong', {}, m[2]));
      last = re.lastIndex;
    }
    if (last < text.length) parts.push(text.slice(last));
    return parts;
  }

  const refName = (ref) => ref.split('/').pop();
  function resolve(obj) {
    let seen = 0;
    while (obj && obj.$ref && seen++ < 10) {
      obj = obj.$ref.split('/').slice(1).reduce((o, k) => o && o[k], spec);
    }
    return obj || {};
  }

  function typeOf(s) {
    if (s.$ref) return null;
    if (s.const !== undefined) return JSON.stringify(s.const);
    if (s.enum) return s.enum.map((v) => JSON.stringify(v)).join(' | ');
    if (s.oneOf) return 'one of';
    if (s.allOf) return 'all of';
    const t = Array.isArray(s.type) ? s.type.join(' | ') : s.type;
    if (t === 'array' || (Array.isArray(s.type) && s.type.includes('array'))) return t + (s.items && s.items.$ref ? ' of ' + refName(s.items.$ref) : '');
    return (t || 'any') + (s.format ? ' (' + s.format + ')' : '');
  }

  // schemaTree lists a schema's properties, following arrays and compositions; a $ref is a link
  // to the schema's own section, so recursive schemas stay finite.
  function schemaTree(s, depth) {
    const ul = h('ul', { class: 'schema' });
    if (!s) return ul;
    if (s.$ref) {
      ul.append(h('li', {}, h('a', { href: '#schema-' + refName(s.$ref) }, refName(s.$ref))));
      return ul;
    }
    const props = s.properties || {};
    const required = new Set(s.required || []);
    for (const [name, p] of Object.entries(props)) {
      const li = h('li', {}, h('span', { class: 'name' }, name), ' ',
        p.$ref ? h('a', { href: '#schema-' + refName(p.$ref) }, refName(p.$ref)) : h('span', { class: 'type' }, typeOf(p)),
        required.has(name) ? h('span', { class: 'req' }, ' required') : null,
        p.description ? h('span', { class: 'note' }, ' — ', inline(p.description)) : null);
      if (depth < 4) {
        const inner = p.items && !p.items.$ref ? p.items : p;
        if (!inner.$ref && (inner.properties || inner.oneOf || inner.allOf)) li.append(schemaTree(inner, depth + 1));
      }
      ul.append(li);
    }
    for (const key of ['oneOf', 'allOf', 'anyOf']) {
      if (s[key]) for (const alt of s[key]) ul.append(h('li', {}, h('span', { class: 'note' }, key + ': '), alt.$ref ? h('a', { href: '#schema-' + refName(alt.$ref) }, refName(alt.$ref)) : h('span', { class: 'type' }, typeOf(alt))));
    }
    if (!Object.keys(props).length && !s.oneOf && !s.allOf && !s.anyOf) {
      ul.append(h('li', {}, h('span', { class: 'type' }, typeOf(s) || ''), s.description ? h('span', { class: 'note' }, ' — ', inline(s.description)) : null));
    }
    return ul;
  }

  function content(c) {
    const box = h('div', {});
    for (const [ctype, media] of Object.entries(c || {})) {
      box.append(h('div', { class: 'ctype' }, ctype));
      if (media.schema) {
        box.append(schemaTree(media.schema, 0));
        if (media.schema.$ref) box.append(schemaTree(resolve(media.schema), 1)); // one level inline
      }
      if (media.example !== undefined) {
        box.append(h('pre', {}, h('code', {}, typeof media.example === 'string' ? media.example : JSON.stringify(media.example, null, 1))));
      }
    }
    return box;
  }

  function operation(path, method, op) {
    const id = 'op-' + (op.operationId || method + path.replace(/\W+/g, '-'));
    const sec = h('section', { class: 'op', id },
      h('h3', {}, h('span', { class: 'method ' + method }, method), h('span', { class: 'path' }, path), h('span', { class: 'summary' }, op.summary || '')));
    if (op.description) sec.append(md(op.description));
    const params = (op.parameters || []).map(resolve);
    if (params.length) {
      sec.append(h('h4', {}, 'Parameters'), h('table', {},
        h('thead', {}, h('tr', {}, h('th', {}, 'Name'), h('th', {}, 'In'), h('th', {}, 'Type'), h('th', {}, 'Description'))),
        h('tbody', {}, params.map((p) => h('tr', {}, h('td', {}, h('code', {}, p.name), p.required ? h('span', { class: 'req' }, ' required') : null),
          h('td', {}, p.in), h('td', {}, typeOf(p.schema || {})), h('td', {}, inline(p.description || '')))))));
    }
    if (op.requestBody) {
      const body = resolve(op.requestBody);
      sec.append(h('h4', {}, 'Request body'), content(body.content));
    }
    const responses = Object.entries(op.responses || {});
    if (responses.length) {
      sec.append(h('h4', {}, 'Responses'));
      const table = h('table', {}, h('tbody', {}, responses.map(([status, r]) => {
        const res = resolve(r);
        return h('tr', {}, h('td', { class: 'status' }, status), h('td', {}, md(res.description || ''), content(res.content)));
      })));
      sec.append(table);
    }
    return sec;
  }

  function render() {
    const toc = document.getElementById('toc');
    const main = document.getElementById('content');
    main.textContent = '';
    toc.textContent = '';
    main.append(h('section', { class: 'intro' }, h('h2', {}, spec.info.title + ' ' + spec.info.version), md(spec.info.description)));
    const byTag = new Map((spec.tags || []).map((t) => [t.name, { tag: t, ops: [] }]));
    for (const [path, item] of Object.entries(spec.paths)) {
      for (const method of METHODS) {
        const op = item[method];
        if (!op) continue;
        const tag = (op.tags && op.tags[0]) || 'Other';
        if (!byTag.has(tag)) byTag.set(tag, { tag: { name: tag }, ops: [] });
        byTag.get(tag).ops.push([path, method, op]);
      }
    }
    for (const { tag, ops } of byTag.values()) {
      if (!ops.length) continue;
      const tagId = 'tag-' + tag.name.replace(/\W+/g, '-');
      main.append(h('h2', { class: 'tag-title', id: tagId }, tag.name));
      if (tag.description) main.append(md(tag.description));
      toc.append(h('h2', {}, h('a', { href: '#' + tagId }, tag.name)));
      for (const [path, method, op] of ops) {
        const sec = operation(path, method, op);
        main.append(sec);
        toc.append(h('a', { href: '#' + sec.id }, h('code', {}, method.toUpperCase()), ' ', path));
      }
    }
    const schemas = (spec.components && spec.components.schemas) || {};
    main.append(h('h2', { class: 'tag-title', id: 'schemas' }, 'Schemas'));
    toc.append(h('h2', {}, h('a', { href: '#schemas' }, 'Schemas')));
    for (const [name, s] of Object.entries(schemas)) {
      main.append(h('section', { class: 'op', id: 'schema-' + name }, h('h3', {}, h('span', { class: 'path' }, name)),
        s.description ? md(s.description) : null, schemaTree(s, 0)));
    }
    if (location.hash) {
      const target = document.getElementById(location.hash.slice(1));
      if (target) target.scrollIntoView();
    }
  }

  fetch('/openapi.json').then((r) => {
    if (!r.ok) throw new Error('GET /openapi.json answered ' + r.status);
    return r.json();
  }).then((s) => { spec = s; render(); }).catch((err) => {
    document.getElementById('content').textContent = 'Could not load the API description: ' + err.message;
  });
})();
