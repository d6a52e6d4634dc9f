// Shared helpers: the REST client (with the user's token), server-sent events over fetch,
// DOM building and formatting. No framework: pages build elements with h().

const TOKEN_KEY = 'pipefn.token';
export const API = '/apis/v2beta1';
const REQUEST_TIMEOUT = 30000;
// The server sends a keep-alive every 15 s on an idle event stream; a stream silent for
// longer than this is taken as lost and reopened.
const STREAM_IDLE = 40000;

export function token() { return localStorage.getItem(TOKEN_KEY) || ''; }
export function setToken(t) {
  if (t) localStorage.setItem(TOKEN_KEY, t); else localStorage.removeItem(TOKEN_KEY);
}

function headers(extra) {
  const h = Object.assign({ Accept: 'application/json' }, extra || {});
  const t = token();
  if (t) h.Authorization = 'Bearer ' + t;
  return h;
}

// ApiError carries the server's {code, message} or says the server could not be reached.
export class ApiError extends Error {
  constructor(status, message, offline) {
    super(message);
    this.status = status;
    this.offline = !!offline;
  }
}

// api calls the REST API and returns the decoded JSON body; it throws ApiError.
export async function api(path, opts = {}) {
  const init = { method: opts.method || 'GET', headers: headers(opts.headers) };
  if (opts.body instanceof FormData) {
    init.body = opts.body;
  } else if (opts.body !== undefined) {
    init.body = JSON.stringify(opts.body);
    init.headers['Content-Type'] = 'application/json';
  }
  // A server that accepts the connection but never answers must not leave the page
  // spinning: give up after REQUEST_TIMEOUT and say so.
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), REQUEST_TIMEOUT);
  init.signal = ac.signal;
  let res, text;
  try {
    res = await fetch(API + path, init);
    text = await res.text();
  } catch (e) {
    if (ac.signal.aborted) throw new ApiError(0, `The pipefn server did not answer ${init.method} ${path} within ${REQUEST_TIMEOUT / 1000} s.`, true);
    throw new ApiError(0, 'Cannot reach the pipefn server (' + e.message + '). Check that it is running.', true);
  } finally {
    clearTimeout(timer);
  }
  if (!res.ok) {
    let msg = text;
    try { msg = JSON.parse(text).message || text; } catch (_) { /* not JSON */ }
    if (res.status === 401) msg = 'Not signed in: set your team\'s API token (top right). ' + msg;
    if (res.status === 403) msg = 'Permission denied: ' + msg;
    throw new ApiError(res.status, msg || res.statusText);
  }
  if (opts.text) return text;
  return text ? JSON.parse(text) : {};
}

// watch follows a server-sent event stream with the Authorization header (EventSource
// cannot send one). onEvent(name, data) gets each event; onState('live'|'lost'|'closed')
// reports the connection. It reconnects with Last-Event-ID until the stream ends and
// finished() agrees (the run ended), or stop() is called.
export function watch(path, onEvent, onState, finished = () => true) {
  const ctl = { stopped: false, abort: null };
  let lastID = '';
  let delay = 500;
  async function loop() {
    while (!ctl.stopped) {
      const ac = new AbortController();
      ctl.abort = ac;
      let ended = false;
      try {
        const h = headers({ Accept: 'text/event-stream' });
        if (lastID) h['Last-Event-ID'] = lastID;
        const res = await fetch(API + path, { headers: h, signal: ac.signal, cache: 'no-store' });
        if (!res.ok) {
          let msg = await res.text();
          try { msg = JSON.parse(msg).message; } catch (_) { /* keep text */ }
          onState('error', msg);
          if (res.status >= 400 && res.status < 500) return;
          throw new Error(msg);
        }
        onState('live');
        delay = 500;
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
        let buf = '';
        let idle = setTimeout(() => ac.abort(), STREAM_IDLE);
        for (;;) {
          let chunk;
          try {
            chunk = await reader.read();
          } finally {
            clearTimeout(idle);
          }
          const { value, done } = chunk;
          if (done) { ended = true; break; }
          idle = setTimeout(() => ac.abort(), STREAM_IDLE);
          buf += value;
          let i;
          while ((i = buf.indexOf('\n\n')) >= 0) {
            const block = buf.slice(0, i);
            buf = buf.slice(i + 2);
            let name = 'message', data = '', id = null;
            for (const line of block.split('\n')) {
              if (line.startsWith(':')) continue;
              const c = line.indexOf(':');
              const f = c < 0 ? line : line.slice(0, c);
              let v = c < 0 ? '' : line.slice(c + 1);
              if (v.startsWith(' ')) v = v.slice(1);
              if (f === 'event') name = v;
              else if (f === 'data') data += (data ? '\n' : '') + v;
              else if (f === 'id') id = v;
            }
            if (id !== null) lastID = id;
            if (data) {
              let parsed = data;
              try { parsed = JSON.parse(data); } catch (_) { /* raw */ }
              onEvent(name, parsed);
            }
          }
        }
      } catch (e) {
        if (ctl.stopped) return;
        onState('lost', e.message);
      }
      if (ended && finished()) { onState('closed'); return; }
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 10000);
    }
  }
  loop();
  return { stop() { ctl.stopped = true; if (ctl.abort) ctl.abort.abort(); } };
}

// h builds an element: h('a', {href: '/x', onclick: fn}, 'text', child, [children]).
export function h(tag, attrs, ...kids) {
  const el = tag === 'svg' || SVG_TAGS.has(tag)
    ? document.createElementNS('http://www.w3.org/2000/svg', tag)
    : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.setAttribute('class', v);
    else if (k === 'text') el.textContent = v;
    else if (k in el && !(el instanceof SVGElement) && typeof v !== 'string') el[k] = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  append(el, kids);
  return el;
}
const SVG_TAGS = new Set(['g', 'rect', 'path', 'text', 'title', 'defs', 'marker', 'circle', 'tspan']);

function append(el, kids) {
  for (const k of kids) {
    if (k === undefined || k === null || k === false) continue;
    if (Array.isArray(k)) append(el, k);
    else el.append(k instanceof Node ? k : String(k));
  }
}

export function badge(state) {
  const s = state || 'PENDING';
  return h('span', { class: 'badge s-' + s }, s.toLowerCase());
}

export function fmtTime(t) {
  if (!t) return '';
  const d = new Date(t);
  if (isNaN(d) || d.getFullYear() < 1971) return '';
  return d.toLocaleString(undefined, { dateStyle: 'short', timeStyle: 'medium' });
}

export function duration(start, end) {
  if (!start) return '';
  const a = new Date(start), b = end ? new Date(end) : new Date();
  if (isNaN(a) || a.getFullYear() < 1971) return '';
  let s = Math.max(0, Math.round((b - a) / 1000));
  const hh = Math.floor(s / 3600); s -= hh * 3600;
  const mm = Math.floor(s / 60); s -= mm * 60;
  return (hh ? hh + 'h ' : '') + (hh || mm ? mm + 'm ' : '') + s + 's';
}

export function fmtBytes(n) {
  if (n === undefined || n === null) return '';
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0, v = Number(n);
  while (v >= 1024 && i < u.length - 1) { v /= 1024; i++; }
  return (i ? v.toFixed(1) : v) + ' ' + u[i];
}

export function errorBox(err) {
  return h('div', { class: 'error-box', role: 'alert' }, err && err.message ? err.message : String(err));
}

export function empty(text, ...more) {
  return h('div', { class: 'empty' }, text, ...more);
}

export function fmtValue(v) {
  if (v === undefined) return '';
  return typeof v === 'string' ? v : JSON.stringify(v);
}

// kv renders a definition list of [label, value] pairs.
export function kv(pairs) {
  return h('dl', { class: 'kv' }, pairs.filter((p) => p && p[1] !== undefined && p[1] !== '').map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
}

// table renders rows with columns [{label, cell(row), num}].
export function table(cols, rows, label) {
  return h('div', { class: 'scroll' }, h('table', { 'aria-label': label },
    h('thead', {}, h('tr', {}, cols.map((c) => h('th', { class: c.num ? 'num' : null, scope: 'col' }, c.label)))),
    h('tbody', {}, rows.map((r) => h('tr', {}, cols.map((c) => h('td', { class: c.num ? 'num' : null }, c.cell(r))))))));
}
