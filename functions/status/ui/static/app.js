// The UI's entry point: a small router over history.pushState. Every address is a real
// server path (see Pages in ui.go), so any page can be shared or reloaded.

import { token, setToken } from './lib.js';
import * as pages from './pages.js';

const routes = [
  [/^\/$/, pages.runs, 'runs'],
  [/^\/runs\/([^/]+)$/, pages.run, 'runs'],
  [/^\/pipelines$/, pages.pipelines, 'pipelines'],
  [/^\/pipelines\/([^/]+)$/, pages.pipeline, 'pipelines'],
  [/^\/artifacts\/([^/]+)\/lineage$/, pages.lineage, 'runs'],
  [/^\/recurringruns$/, pages.recurring, 'recurringruns'],
  [/^\/experiments$/, pages.experiments, 'experiments'],
  [/^\/compare$/, pages.compare, 'runs'],
];

let cleanup = null;
let generation = 0;

// render draws the page for the current address. Each render draws into its own root,
// which replaces the previous one at once; a render overtaken by a newer navigation
// (a double click, a quick back) keeps writing into its detached root, harmlessly,
// and anything it starts that must be stopped is stopped at once.
async function render() {
  const gen = ++generation;
  if (cleanup) { try { cleanup(); } catch (_) { /* page already gone */ } cleanup = null; }
  const main = document.getElementById('main');
  const root = document.createElement('div');
  main.replaceChildren(root);
  const path = location.pathname;
  const q = new URLSearchParams(location.search);
  banner('');
  for (const [re, fn, section] of routes) {
    const m = re.exec(path);
    if (!m) continue;
    for (const a of document.querySelectorAll('[data-nav]')) {
      a.classList.toggle('active', a.dataset.nav === section);
      if (a.dataset.nav === section) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
    }
    const current = () => gen === generation;
    const ctx = {
      main: root, q, navigate,
      banner: (text, kind) => { if (current()) banner(text, kind); },
      onLeave: (f) => { if (current()) cleanup = f; else f(); },
    };
    try {
      await fn(ctx, ...m.slice(1).map(decodeURIComponent));
    } catch (e) {
      pages.showError(root, e);
    }
    return;
  }
  pages.showError(root, new Error('No page at ' + path + '.'));
}

export function navigate(url, replace) {
  if (replace) history.replaceState(null, '', url); else history.pushState(null, '', url);
  render().then(() => {
    if (!replace) document.getElementById('main').focus({ preventScroll: true });
  });
}

// banner shows a page-wide message; kind 'error' for failures.
function banner(text, kind) {
  const b = document.getElementById('banner');
  b.textContent = text || '';
  b.className = kind || '';
  b.hidden = !text;
}

document.addEventListener('click', (e) => {
  const a = e.target.closest('a');
  if (!a || e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || a.target || a.hasAttribute('download')) return;
  const url = new URL(a.href, location.href);
  if (url.origin !== location.origin || url.pathname.startsWith('/apis/') || url.pathname.startsWith('/ui/')) return;
  e.preventDefault();
  navigate(url.pathname + url.search);
});
window.addEventListener('popstate', render);

const form = document.getElementById('token-form');
const input = document.getElementById('token-input');
input.value = token();
form.addEventListener('submit', (e) => {
  e.preventDefault();
  setToken(input.value.trim());
  const msg = input.value.trim() ? 'Token saved in this browser.' : 'Token cleared.';
  render().then(() => banner(msg));
});

render();
