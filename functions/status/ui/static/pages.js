// The pages. Each takes the router's context ({main, q, navigate, banner, onLeave}) and
// the address's parameters, fetches through the REST API and draws into main.

import { api, watch, h, badge, fmtTime, duration, fmtBytes, errorBox, empty, fmtValue, kv, table, ApiError } from './lib.js';
import { specOf, pipelineGraph, runGraph, draw, sameShape, irTasks } from './graph.js';

const STATES = ['PENDING', 'RUNNING', 'SUCCEEDED', 'FAILED', 'SKIPPED', 'CANCELING', 'CANCELED'];
const TERMINAL = new Set(['SUCCEEDED', 'FAILED', 'SKIPPED', 'CANCELED']);
const enc = encodeURIComponent;

export function showError(main, e) {
  main.append(errorBox(e));
  if (e instanceof ApiError && e.offline) {
    main.append(h('button', { onclick: () => location.reload() }, 'Retry'));
  }
}

// names caches id -> display name lookups for pipelines and experiments (one page each).
const names = { pipelines: null, experiments: null };
async function nameMap(kind) {
  if (names[kind]) return names[kind];
  const key = kind === 'pipelines' ? 'pipeline_id' : 'experiment_id';
  const m = new Map();
  try {
    const r = await api(`/${kind}?page_size=200`);
    for (const x of r[kind] || []) m.set(x[key], x.display_name || x.name || x[key]);
  } catch (_) { /* names are a nicety; ids still show */ }
  names[kind] = m;
  setTimeout(() => { names[kind] = null; }, 30000);
  return m;
}

function pageBar(ctx, next, basePath) {
  const q = new URLSearchParams(ctx.q);
  const cur = q.get('page_token');
  const bar = h('nav', { class: 'pager', 'aria-label': 'Pages' });
  if (cur) {
    const first = new URLSearchParams(q); first.delete('page_token');
    bar.append(h('a', { href: basePath + (first.toString() ? '?' + first : '') }, '« First page'));
  }
  if (next) {
    const n = new URLSearchParams(q); n.set('page_token', next);
    bar.append(h('a', { href: basePath + '?' + n }, 'Next page »'));
  }
  return bar;
}

// ---- Runs ----

export async function runs(ctx) {
  const { main, q } = ctx;
  main.append(h('h1', {}, 'Runs'));
  const st = q.get('state') || '', exp = q.get('experiment_id') || '';
  const expNames = await nameMap('experiments');
  const setQ = (k, v) => {
    const n = new URLSearchParams(q); n.delete('page_token');
    if (v) n.set(k, v); else n.delete(k);
    ctx.navigate('/' + (n.toString() ? '?' + n : ''));
  };
  const selected = new Set();
  const compareBtn = h('button', { disabled: true, onclick: () => ctx.navigate('/compare?runs=' + [...selected].map(enc).join(',')) }, 'Compare selected');
  main.append(h('div', { class: 'toolbar' },
    h('label', { for: 'f-state' }, 'State'),
    h('select', { id: 'f-state', onchange: (e) => setQ('state', e.target.value) },
      h('option', { value: '' }, 'any'), STATES.map((s) => h('option', { value: s, selected: s === st }, s.toLowerCase()))),
    h('label', { for: 'f-exp' }, 'Experiment'),
    h('select', { id: 'f-exp', onchange: (e) => setQ('experiment_id', e.target.value) },
      h('option', { value: '' }, 'any'), [...expNames].map(([id, n]) => h('option', { value: id, selected: id === exp }, n)),
      exp && !expNames.has(exp) ? h('option', { value: exp, selected: true }, exp) : null),
    q.get('pipeline_version_id') ? h('button', { onclick: () => setQ('pipeline_version_id', '') }, 'Clear pipeline version filter') : null,
    h('span', { class: 'grow' }), compareBtn));
  const params = new URLSearchParams({ page_size: q.get('page_size') || '20' });
  if (q.get('page_token')) params.set('page_token', q.get('page_token'));
  if (exp) params.set('experiment_id', exp);
  const preds = [];
  if (st) preds.push({ key: 'state', operation: 'EQUALS', string_value: st });
  if (q.get('pipeline_version_id')) preds.push({ key: 'pipeline_version_id', operation: 'EQUALS', string_value: q.get('pipeline_version_id') });
  if (preds.length) params.set('filter', JSON.stringify({ predicates: preds }));
  const r = await api('/runs?' + params);
  const list = r.runs || [];
  if (!list.length) {
    const filtered = st || exp || preds.length;
    main.append(empty(filtered ? 'No runs match these filters.' : 'No runs yet. ', filtered ? null : h('a', { href: '/pipelines' }, 'Upload a pipeline and start a run.')));
    return;
  }
  const pipes = await nameMap('pipelines');
  main.append(table([
    { label: h('span', { class: 'muted' }, 'Compare'), cell: (x) => h('input', { type: 'checkbox', 'aria-label': 'select ' + x.display_name, onchange: (e) => {
      if (e.target.checked) selected.add(x.run_id); else selected.delete(x.run_id);
      compareBtn.disabled = selected.size < 2;
    } }) },
    { label: 'Run', cell: (x) => h('a', { href: '/runs/' + enc(x.run_id) }, x.display_name || x.run_id) },
    { label: 'State', cell: (x) => badge(x.state) },
    { label: 'Duration', cell: (x) => duration(x.created_at, x.finished_at) },
    { label: 'Experiment', cell: (x) => (x.experiment_id ? h('a', { href: '/?experiment_id=' + enc(x.experiment_id) }, expNames.get(x.experiment_id) || x.experiment_id) : '') },
    { label: 'Pipeline', cell: (x) => {
      const ref = x.pipeline_version_reference;
      return ref && ref.pipeline_id ? h('a', { href: '/pipelines/' + enc(ref.pipeline_id) }, pipes.get(ref.pipeline_id) || ref.pipeline_id) : h('span', { class: 'muted' }, 'inline spec');
    } },
    { label: 'Created', cell: (x) => fmtTime(x.created_at) },
  ], list, 'Runs'));
  main.append(pageBar(ctx, r.next_page_token, '/'));
  // Marks when the first runs list is on screen (read by the browser benchmark).
  if (!performance.getEntriesByName('pipefn:runs-drawn').length) performance.mark('pipefn:runs-drawn');
}

// specForRun finds a run's IR: inline on the run, or its pipeline version's.
async function specForRun(run) {
  const inline = specOf(run.pipeline_spec);
  if (inline) return inline;
  const ref = run.pipeline_version_reference;
  if (!ref || !ref.pipeline_version_id) return null;
  const v = await api(`/pipelines/${enc(ref.pipeline_id)}/versions/${enc(ref.pipeline_version_id)}`);
  return specOf(v.pipeline_spec);
}

function taskSubtitle(n) {
  const d = n.detail;
  const s = (n.state || 'PENDING').toLowerCase();
  if (d && d.start_time && (n.state === 'RUNNING' || d.end_time)) return s + ' · ' + duration(d.start_time, d.end_time);
  return s;
}

export async function run(ctx, runID) {
  const { main } = ctx;
  let cur = await api('/runs/' + enc(runID));
  const [spec, pipes, exps] = await Promise.all([specForRun(cur).catch(() => null), nameMap('pipelines'), nameMap('experiments')]);
  let selected = '';
  let graph = null;
  const head = h('div');
  const graphBox = h('div', { class: 'graph', id: 'run-graph' });
  const taskBox = h('div', { class: 'panel', id: 'task-panel' }, h('p', { class: 'muted' }, 'Select a task in the graph to see its inputs, outputs, timings and logs.'));
  const artBox = h('section', { id: 'artifacts' });
  const metBox = h('section', { id: 'metrics' });
  main.append(head, h('div', { class: 'grid2' }, h('section', { 'aria-label': 'Task graph' }, graphBox, legend()), taskBox), artBox, metBox);

  function drawHead() {
    const r = cur;
    const ref = r.pipeline_version_reference;
    const actions = h('div', { class: 'toolbar' });
    if (!TERMINAL.has(r.state) && r.state !== 'CANCELING') actions.append(confirmButton('Terminate', 'Really terminate this run?', async () => {
      await api(`/runs/${enc(r.run_id)}:terminate`, { method: 'POST', body: {} });
    }, ctx));
    if (r.state === 'FAILED' || r.state === 'CANCELED') actions.append(h('button', { onclick: () => act(ctx, () => api(`/runs/${enc(r.run_id)}:retry`, { method: 'POST', body: {} })) }, 'Retry'));
    actions.append(h('button', { onclick: () => cloneDialog(ctx, r, spec) }, 'Clone with new parameters'));
    const params = (r.runtime_config && r.runtime_config.parameters) || {};
    head.replaceChildren(
      h('h1', {}, r.display_name || r.run_id, ' ', h('span', { id: 'run-state' }, badge(r.state))),
      actions,
      h('div', { class: 'panel' }, kv([
        ['Run id', r.run_id],
        ['Pipeline', ref && ref.pipeline_id ? h('a', { href: '/pipelines/' + enc(ref.pipeline_id) + (ref.pipeline_version_id ? '?version=' + enc(ref.pipeline_version_id) : '') }, pipes.get(ref.pipeline_id) || ref.pipeline_id) : 'inline spec'],
        ['Experiment', r.experiment_id ? h('a', { href: '/?experiment_id=' + enc(r.experiment_id) }, exps.get(r.experiment_id) || r.experiment_id) : ''],
        ['Created', fmtTime(r.created_at)],
        ['Finished', fmtTime(r.finished_at)],
        ['Duration', duration(r.created_at, r.finished_at)],
        ['Parameters', Object.keys(params).length ? Object.entries(params).map(([k, v]) => k + '=' + fmtValue(v)).join(', ') : ''],
        ['Backend', r.backend || ''],
        ['Attempt', r.attempt ? String(r.attempt + 1) : ''],
        ['Cloned from', r.cloned_from ? h('a', { href: '/runs/' + enc(r.cloned_from) }, r.cloned_from) : ''],
        ['Error', r.error ? r.error.message : ''],
      ])));
  }

  function drawGraph() {
    const g = runGraph(spec, (cur.run_details && cur.run_details.task_details) || []);
    if (!g.nodes.length) {
      graphBox.replaceChildren(empty(spec ? 'This pipeline has no tasks.' : 'The pipeline of this run could not be read; tasks appear as they start.'));
      graph = null;
      return;
    }
    if (sameShape(graph, g)) {
      // Restyle in place so focus and scroll stay where the user left them.
      for (const n of g.nodes) {
        const el = graphBox.querySelector(`g.node[data-id="${CSS.escape(n.id)}"]`);
        if (!el) continue;
        el.setAttribute('class', `node n-${n.state}${n.isDag ? ' dag' : ''}${n.id === selected ? ' sel' : ''}`);
        const sub = taskSubtitle(n);
        el.querySelector('text.state').textContent = sub;
        el.setAttribute('aria-label', `${n.label}: ${sub}`);
      }
    } else {
      const svg = draw(g, {
        label: 'Run task graph', selected,
        nodeClass: (n) => 'n-' + n.state, subtitle: taskSubtitle,
        onSelect: (n) => { selected = n.id; showTask(); drawGraph(); },
      });
      graphBox.replaceChildren(svg);
      // Marks when the run's DAG is first on screen (read by the browser benchmark).
      if (!performance.getEntriesByName('pipefn:dag-drawn').length) performance.mark('pipefn:dag-drawn');
    }
    graph = g;
  }

  function showTask() {
    const n = graph && graph.nodes.find((x) => x.id === selected);
    if (!n) return;
    const d = n.detail || {};
    const logPre = h('pre', { class: 'log', id: 'task-log', hidden: true });
    const arts = (m) => Object.entries(m || {}).map(([k, v]) => [k, h('span', {}, (v.uris || []).join(', '), ' ',
      (v.artifact_ids || []).map((id) => h('a', { href: '/artifacts/' + enc(id) + '/lineage' }, 'lineage')))]);
    const params = (m) => Object.entries(m || {}).map(([k, v]) => [k, fmtValue(v)]);
    const ins = [...params(d.input_parameters), ...arts(d.inputs)];
    const outs = [...params(d.output_parameters), ...arts(d.outputs)];
    taskBox.replaceChildren(
      h('h2', {}, n.label, ' ', badge(n.state)),
      kv([['Task id', n.id], ['Component', n.task ? n.task.component : ''], ['Condition', n.task ? n.task.condition : ''],
        ['Started', fmtTime(d.start_time)], ['Ended', fmtTime(d.end_time)], ['Duration', duration(d.start_time, d.end_time)],
        ['Cached from', d.cached_from || ''], ['Error', d.error ? d.error.message : ''],
        ['Lineage', d.execution_id ? h('a', { href: '/artifacts/' + enc(d.execution_id) + '/lineage' }, 'explore from this execution') : '']]),
      h('h3', {}, 'Inputs'), ins.length ? kv(ins) : h('p', { class: 'muted' }, 'none'),
      h('h3', {}, 'Outputs'), outs.length ? kv(outs) : h('p', { class: 'muted' }, n.detail ? 'none' : 'not started'),
      n.isDag ? null : h('button', { id: 'show-log', onclick: async () => {
        logPre.hidden = false;
        logPre.textContent = 'Loading…';
        try {
          const t = await api(`/runs/${enc(cur.run_id)}/nodes/${enc(n.id)}/log`, { text: true });
          logPre.textContent = t || '(empty log)';
        } catch (e) { logPre.textContent = e.message; }
      } }, 'Show logs'),
      logPre);
  }

  let artKey = '';
  async function loadArtifacts() {
    const done = ((cur.run_details && cur.run_details.task_details) || []).filter((t) => TERMINAL.has(t.state) || t.state === 'CACHED').length;
    const key = done + ':' + cur.state;
    if (key === artKey) return;
    artKey = key;
    try {
      const [a, m] = await Promise.all([api(`/runs/${enc(cur.run_id)}/artifacts`), api(`/runs/${enc(cur.run_id)}/metrics`)]);
      artBox.replaceChildren(h('h2', {}, 'Artifacts'), artifactsTable(a.artifacts || []));
      metBox.replaceChildren(...metricsView(m.metrics || []));
    } catch (e) {
      artBox.replaceChildren(h('h2', {}, 'Artifacts'), errorBox(e));
    }
  }

  drawHead(); drawGraph(); loadArtifacts();
  if (TERMINAL.has(cur.state)) return;
  const w = watch(`/runs/${enc(runID)}/events`, (name, data) => {
    if (name !== 'run' || typeof data !== 'object') return;
    const before = cur.state;
    cur = data;
    if (before !== cur.state) drawHead();
    else document.getElementById('run-state')?.replaceChildren(badge(cur.state));
    drawGraph();
    if (selected) showTask();
    loadArtifacts();
  }, (state, msg) => {
    if (state === 'lost') ctx.banner('Connection to the server lost; reconnecting… (' + (msg || '') + ')', 'error');
    else if (state === 'live') ctx.banner('');
    else if (state === 'error') ctx.banner('Live updates unavailable: ' + msg, 'error');
  }, () => TERMINAL.has(cur.state));
  ctx.onLeave(() => w.stop());
}

function legend() {
  return h('div', { class: 'legend', 'aria-label': 'Task states' }, ['PENDING', 'RUNNING', 'SUCCEEDED', 'FAILED', 'SKIPPED', 'CACHED', 'CANCELED'].map(badge));
}

// act runs a write and reloads the page, or shows why it failed.
async function act(ctx, fn) {
  try {
    await fn();
    ctx.navigate(location.pathname + location.search, true);
  } catch (e) { ctx.banner(e.message, 'error'); }
}

function confirmButton(label, question, fn, ctx) {
  const wrap = h('span');
  const ask = h('button', { class: 'danger', onclick: () => {
    const yes = h('button', { class: 'danger', onclick: () => act(ctx, fn) }, 'Yes, ' + label.toLowerCase());
    wrap.replaceChildren(h('span', {}, question + ' '), yes, ' ', h('button', { onclick: () => wrap.replaceChildren(ask) }, 'No'));
    yes.focus();
  } }, label);
  wrap.append(ask);
  return wrap;
}

function artifactsTable(list) {
  if (!list.length) return empty('No artifacts recorded for this run yet.');
  return table([
    { label: 'Name', cell: (a) => a.name },
    { label: 'Type', cell: (a) => a.type },
    { label: 'Producer', cell: (a) => a.producer_task || '' },
    { label: 'URI', cell: (a) => h('code', {}, a.uri) },
    { label: 'Size', num: true, cell: (a) => fmtBytes(a.size) },
    { label: 'Links', cell: (a) => [h('a', { href: '/artifacts/' + enc(a.artifact_id) + '/lineage' }, 'lineage'), ' ',
      h('button', { class: 'download', onclick: (e) => download(e.target, a) }, 'download')] },
  ], list, 'Artifacts');
}

// download asks for the artifact as KFP's API gives it for download (view=DOWNLOAD
// answers a download_url, for S3 a presigned one) and opens that URL. A plain link
// could not carry the team's token.
async function download(btn, a) {
  const note = btn.nextElementSibling && btn.nextElementSibling.classList.contains('dl-note') ? btn.nextElementSibling : h('span', { class: 'dl-note muted', role: 'status' });
  btn.after(note);
  note.textContent = ' …';
  try {
    const r = await api('/artifacts/' + enc(a.artifact_id) + '?view=DOWNLOAD');
    if (!r.download_url) throw new Error('the server offers no download URL for ' + a.uri);
    note.textContent = '';
    const link = h('a', { href: r.download_url, download: a.name || '', rel: 'noopener' });
    document.body.append(link);
    link.click();
    link.remove();
  } catch (e) {
    note.textContent = ' download unavailable: ' + e.message;
  }
}

function metricsView(list) {
  if (!list.length) return [];
  const out = [h('h2', {}, 'Metrics')];
  for (const m of list) {
    out.push(h('h3', {}, (m.producer_task ? m.producer_task + ' · ' : '') + m.name));
    if (m.metrics_error) out.push(errorBox(m.metrics_error));
    const sc = Object.entries(m.scalars || {});
    if (sc.length) out.push(table([{ label: 'Metric', cell: (x) => x[0] }, { label: 'Value', num: true, cell: (x) => String(x[1]) }], sc, 'Scalar metrics'));
    const cm = m.confusion_matrix;
    if (cm && cm.labels) {
      out.push(h('div', { class: 'scroll' }, h('table', { class: 'cm', 'aria-label': 'Confusion matrix' },
        h('caption', { class: 'muted' }, 'Confusion matrix (rows: actual, columns: predicted)'),
        h('thead', {}, h('tr', {}, h('th', {}), cm.labels.map((l) => h('th', { scope: 'col' }, l)))),
        h('tbody', {}, (cm.rows || []).map((row, i) => {
          const max = Math.max(1, ...row);
          return h('tr', {}, h('th', { scope: 'row' }, cm.labels[i]), row.map((v) => {
            // CSSOM, not a style attribute: the page's CSP forbids inline styles.
            const td = h('td', {}, String(v));
            td.style.background = `rgba(31,95,191,${(0.08 + 0.6 * v / max).toFixed(2)})`;
            return td;
          }));
        })))));
    }
    if (m.roc && m.roc.length) {
      out.push(table([{ label: 'Threshold', num: true, cell: (p) => p.threshold }, { label: 'Recall', num: true, cell: (p) => p.recall }, { label: 'False positive rate', num: true, cell: (p) => p.false_positive_rate }], m.roc, 'ROC'));
    }
  }
  return out;
}

// paramInputs builds inputs for a pipeline's root parameters; read() returns typed values
// for those the user changed (or all, when all is set).
function paramInputs(spec, current) {
  const defs = (spec && spec.root && (spec.root.inputDefinitions || spec.root.input_definitions) || {}).parameters || {};
  const rows = [];
  const fields = [];
  for (const [name, d] of Object.entries(defs)) {
    const type = d.parameterType || d.parameter_type || 'STRING';
    const val = current && current[name] !== undefined ? current[name] : d.defaultValue;
    const id = 'p-' + name.replace(/[^A-Za-z0-9_-]/g, '_');
    const input = h('input', { id, name, value: val === undefined ? '' : (typeof val === 'string' ? val : JSON.stringify(val)), 'data-type': type, placeholder: type.toLowerCase() });
    fields.push(input);
    rows.push(h('label', { for: id }, name), input);
  }
  return {
    rows,
    read() {
      const out = {};
      for (const f of fields) {
        if (f.value === '' && f.dataset.type !== 'STRING') continue;
        if (f.dataset.type === 'STRING') { out[f.name] = f.value; continue; }
        try { out[f.name] = JSON.parse(f.value); } catch (_) { out[f.name] = f.value; }
      }
      return out;
    },
  };
}

function cloneDialog(ctx, r, spec) {
  const p = paramInputs(spec, (r.runtime_config && r.runtime_config.parameters) || {});
  const name = h('input', { id: 'clone-name', value: 'Clone of ' + (r.display_name || r.run_id) });
  const err = h('div');
  const dlg = h('dialog', { 'aria-label': 'Clone run' });
  const form = h('form', { method: 'dialog', onsubmit: async (e) => {
    e.preventDefault();
    try {
      const out = await api(`/runs/${enc(r.run_id)}:clone`, { method: 'POST', body: { display_name: name.value, parameters: p.read() } });
      dlg.close(); dlg.remove();
      ctx.navigate('/runs/' + enc(out.run_id));
    } catch (ex) { err.replaceChildren(errorBox(ex)); }
  } },
  h('h2', {}, 'Clone run with new parameters'),
  h('div', { class: 'form' }, h('label', { for: 'clone-name' }, 'Name'), name, p.rows),
  err,
  h('div', { class: 'actions' }, h('button', { type: 'button', onclick: () => { dlg.close(); dlg.remove(); } }, 'Cancel'), h('button', { class: 'primary', type: 'submit', id: 'clone-submit' }, 'Start clone')));
  dlg.append(form);
  document.body.append(dlg);
  dlg.showModal();
}

// ---- Pipelines ----

export async function pipelines(ctx) {
  const { main, q } = ctx;
  main.append(h('h1', {}, 'Pipelines'));
  const file = h('input', { type: 'file', id: 'upload-file', accept: '.yaml,.yml,.json', required: true });
  const name = h('input', { id: 'upload-name', placeholder: 'from the IR' });
  const err = h('div');
  main.append(h('form', { class: 'panel toolbar', 'aria-label': 'Upload a pipeline', onsubmit: async (e) => {
    e.preventDefault();
    if (!file.files.length) return;
    const fd = new FormData();
    fd.append('uploadfile', file.files[0]);
    try {
      const p = await api('/pipelines/upload' + (name.value ? '?name=' + enc(name.value) : ''), { method: 'POST', body: fd });
      names.pipelines = null;
      ctx.navigate('/pipelines/' + enc(p.pipeline_id));
    } catch (ex) { err.replaceChildren(errorBox(ex)); }
  } }, h('label', { for: 'upload-file' }, 'Upload IR'), file, h('label', { for: 'upload-name' }, 'Name'), name, h('button', { class: 'primary', type: 'submit', id: 'upload-submit' }, 'Upload')), err);
  const params = new URLSearchParams({ page_size: '20' });
  if (q.get('page_token')) params.set('page_token', q.get('page_token'));
  const r = await api('/pipelines?' + params);
  const list = r.pipelines || [];
  if (!list.length) { main.append(empty('No pipelines yet: upload a compiled KFP IR file (YAML) above.')); return; }
  main.append(table([
    { label: 'Pipeline', cell: (p) => h('a', { href: '/pipelines/' + enc(p.pipeline_id) }, p.display_name || p.name) },
    { label: 'Description', cell: (p) => p.description || '' },
    { label: 'Created', cell: (p) => fmtTime(p.created_at) },
  ], list, 'Pipelines'), pageBar(ctx, r.next_page_token, '/pipelines'));
}

export async function pipeline(ctx, id) {
  const { main, q } = ctx;
  const [p, vr] = await Promise.all([api('/pipelines/' + enc(id)), api(`/pipelines/${enc(id)}/versions?page_size=100`)]);
  const versions = vr.pipeline_versions || vr.versions || [];
  main.append(h('h1', {}, p.display_name || p.name), p.description ? h('p', { class: 'muted' }, p.description) : null);
  if (!versions.length) { main.append(empty('This pipeline has no versions.')); return; }
  const want = q.get('version');
  let v = versions.find((x) => x.pipeline_version_id === want) || versions[0];
  if (!v.pipeline_spec) v = await api(`/pipelines/${enc(id)}/versions/${enc(v.pipeline_version_id)}`);
  const spec = specOf(v.pipeline_spec);
  main.append(h('div', { class: 'toolbar' }, h('label', { for: 'version' }, 'Version'),
    h('select', { id: 'version', onchange: (e) => ctx.navigate('/pipelines/' + enc(id) + '?version=' + enc(e.target.value)) },
      versions.map((x) => h('option', { value: x.pipeline_version_id, selected: x.pipeline_version_id === v.pipeline_version_id }, (x.display_name || x.name) + ' · ' + fmtTime(x.created_at)))),
    h('a', { href: '/?' + new URLSearchParams({ pipeline_version_id: v.pipeline_version_id }) }, 'Runs of this version')));
  const g = pipelineGraph(spec);
  const info = h('div', { class: 'panel' }, h('p', { class: 'muted' }, 'Select a task to see its component.'));
  const box = h('div', { class: 'graph', id: 'pipeline-graph' });
  box.append(g.nodes.length ? draw(g, { label: 'Pipeline graph', nodeClass: () => '', subtitle: (n) => n.task.component.replace(/^comp-/, ''),
    onSelect: (n) => info.replaceChildren(h('h2', {}, n.label), kv([['Task', n.id], ['Component', n.task.component], ['Depends on', n.task.deps.join(', ')], ['Condition', n.task.condition], ['Loop', n.task.loop ? 'yes' : '']])) }) : empty('No tasks in this IR.'));
  main.append(h('div', { class: 'grid2' }, box, info));

  // Start a run of this version.
  const pi = paramInputs(spec, {});
  const rname = h('input', { id: 'run-name', value: (p.display_name || p.name) + ' ' + new Date().toISOString().slice(0, 19).replace('T', ' ') });
  const exps = await nameMap('experiments');
  const exp = h('select', { id: 'run-exp' }, h('option', { value: '' }, 'default'), [...exps].map(([eid, n]) => h('option', { value: eid }, n)));
  const err = h('div');
  main.append(h('h2', {}, 'Start a run'), h('form', { class: 'panel', 'aria-label': 'Start a run', onsubmit: async (e) => {
    e.preventDefault();
    try {
      const body = { display_name: rname.value, pipeline_version_reference: { pipeline_id: id, pipeline_version_id: v.pipeline_version_id }, runtime_config: { parameters: pi.read() } };
      if (exp.value) body.experiment_id = exp.value;
      const r = await api('/runs', { method: 'POST', body });
      ctx.navigate('/runs/' + enc(r.run_id));
    } catch (ex) { err.replaceChildren(errorBox(ex)); }
  } }, h('div', { class: 'form' }, h('label', { for: 'run-name' }, 'Name'), rname, h('label', { for: 'run-exp' }, 'Experiment'), exp, pi.rows),
  err, h('div', { class: 'actions' }, h('button', { class: 'primary', type: 'submit', id: 'start-run' }, 'Start run'))));

  // Upload another version.
  const file = h('input', { type: 'file', id: 'version-file', accept: '.yaml,.yml,.json' });
  const verr = h('div');
  main.append(h('h2', {}, 'New version'), h('form', { class: 'panel toolbar', 'aria-label': 'Upload a version', onsubmit: async (e) => {
    e.preventDefault();
    if (!file.files.length) return;
    const fd = new FormData(); fd.append('uploadfile', file.files[0]);
    try {
      const nv = await api('/pipelines/upload_version?pipelineid=' + enc(id) + '&name=' + enc(file.files[0].name.replace(/\.[^.]*$/, '') + '-' + Date.now()), { method: 'POST', body: fd });
      ctx.navigate('/pipelines/' + enc(id) + '?version=' + enc(nv.pipeline_version_id));
    } catch (ex) { verr.replaceChildren(errorBox(ex)); }
  } }, h('label', { for: 'version-file' }, 'IR file'), file, h('button', { type: 'submit' }, 'Upload version')), verr);
}

// ---- Lineage ----

export async function lineage(ctx, id) {
  const { main, q } = ctx;
  const dir = q.get('direction') || 'both';
  const depth = q.get('depth') || '5';
  main.append(h('h1', {}, 'Lineage of ', h('code', {}, id)));
  const go = (k, v) => { const n = new URLSearchParams(q); n.set(k, v); ctx.navigate(`/artifacts/${enc(id)}/lineage?${n}`); };
  main.append(h('div', { class: 'toolbar' },
    h('label', { for: 'l-dir' }, 'Direction'),
    h('select', { id: 'l-dir', onchange: (e) => go('direction', e.target.value) }, ['both', 'upstream', 'downstream'].map((d) => h('option', { value: d, selected: d === dir }, d))),
    h('label', { for: 'l-depth' }, 'Depth'),
    h('select', { id: 'l-depth', onchange: (e) => go('depth', e.target.value) }, ['1', '2', '3', '5', '10', '20'].map((d) => h('option', { value: d, selected: d === depth }, d)))));
  const dirs = dir === 'both' ? ['upstream', 'downstream'] : [dir];
  const parts = await Promise.all(dirs.map((d) => api(`/artifacts/${enc(id)}/lineage?direction=${d}&depth=${enc(depth)}`)));
  const nodes = new Map(), edges = new Map();
  let truncated = false;
  for (const g of parts) {
    truncated = truncated || g.truncated;
    for (const n of g.nodes || []) if (!nodes.has(n.id)) nodes.set(n.id, n);
    for (const e of g.edges || []) edges.set(e.from + '>' + e.to, e);
  }
  const start = nodes.get(id);
  const info = h('div', { class: 'panel', id: 'lineage-info' });
  const showNode = (n) => info.replaceChildren(h('h2', {}, n.name || n.id), kv([
    ['Id', n.id], ['Kind', n.kind], ['Type', n.type || ''], ['URI', n.uri ? h('code', {}, n.uri) : ''], ['State', n.state || ''],
    ['Run', n.run_id ? h('a', { href: '/runs/' + enc(n.run_id) }, n.run_id) : ''], ['Task', n.task_id || ''],
    ['Stored', n.missing ? 'not yet' : ''],
  ]), n.id !== id ? h('a', { href: `/artifacts/${enc(n.id)}/lineage?direction=${enc(dir)}` }, 'Explore from here') : null);
  if (start) showNode(start);
  if (truncated) main.append(h('p', { class: 'muted' }, 'The graph is truncated; explore from a node to see further.'));
  const g = { nodes: [...nodes.values()].map((n) => ({ id: n.id, label: n.name || n.id, raw: n })), edges: [...edges.values()].map((e) => [e.from, e.to]) };
  if (!g.nodes.length) { main.append(empty('Nothing is recorded for this id.')); return; }
  main.append(h('div', { class: 'grid2' }, h('div', { class: 'graph', id: 'lineage-graph' }, draw(g, {
    label: 'Lineage graph',
    nodeClass: (n) => (n.raw.kind === 'artifact' ? 'artifact' : 'n-' + (n.raw.state || '')) + (n.id === id ? ' start' : ''),
    subtitle: (n) => (n.raw.kind === 'artifact' ? (n.raw.type || 'artifact') : 'execution' + (n.raw.state ? ' · ' + n.raw.state.toLowerCase() : '')),
    onSelect: (n) => showNode(n.raw),
  })), info));
}

// ---- Recurring runs ----

export async function recurring(ctx) {
  const { main, q } = ctx;
  main.append(h('h1', {}, 'Recurring runs'));
  const params = new URLSearchParams({ page_size: '50' });
  if (q.get('page_token')) params.set('page_token', q.get('page_token'));
  const r = await api('/recurringruns?' + params);
  const list = r.recurringRuns || r.recurring_runs || [];
  if (!list.length) { main.append(empty('No recurring runs. Create one with `pipefn schedule create`.')); return; }
  const next = await Promise.all(list.map((x) => api(`/recurringruns/${enc(x.recurring_run_id)}:next?count=3`).catch(() => ({ next_fire_times: [] }))));
  const pipes = await nameMap('pipelines');
  main.append(table([
    { label: 'Name', cell: (x) => x.display_name },
    { label: 'Status', cell: (x) => h('span', { class: 'badge ' + (x.status === 'ENABLED' ? 's-SUCCEEDED' : 's-SKIPPED') }, (x.status || '').toLowerCase()) },
    { label: 'Trigger', cell: (x) => (x.trigger.cron_schedule ? 'cron ' + x.trigger.cron_schedule.cron : x.trigger.periodic_schedule ? 'every ' + x.trigger.periodic_schedule.interval_second + ' s' : '') + (x.time_zone ? ' (' + x.time_zone + ')' : '') },
    { label: 'Next fire times', cell: (x) => {
      const t = next[list.indexOf(x)].next_fire_times || [];
      return x.status === 'ENABLED' && t.length ? h('ul', {}, t.map((s) => h('li', {}, fmtTime(s)))) : h('span', { class: 'muted' }, x.status === 'ENABLED' ? 'none' : 'disabled');
    } },
    { label: 'Pipeline', cell: (x) => (x.pipeline_version_reference ? h('a', { href: '/pipelines/' + enc(x.pipeline_version_reference.pipeline_id) }, pipes.get(x.pipeline_version_reference.pipeline_id) || x.pipeline_version_reference.pipeline_id) : 'inline spec') },
    { label: 'Action', cell: (x) => {
      const en = x.status === 'ENABLED';
      return h('button', { onclick: () => act(ctx, () => api(`/recurringruns/${enc(x.recurring_run_id)}:${en ? 'disable' : 'enable'}`, { method: 'POST', body: {} })) }, en ? 'Disable' : 'Enable');
    } },
  ], list, 'Recurring runs'), pageBar(ctx, r.next_page_token, '/recurringruns'));
}

// ---- Experiments ----

export async function experiments(ctx) {
  const { main, q } = ctx;
  main.append(h('h1', {}, 'Experiments'));
  const name = h('input', { id: 'exp-name', required: true });
  const desc = h('input', { id: 'exp-desc' });
  const err = h('div');
  main.append(h('form', { class: 'panel toolbar', 'aria-label': 'Create an experiment', onsubmit: async (e) => {
    e.preventDefault();
    try {
      await api('/experiments', { method: 'POST', body: { display_name: name.value, description: desc.value } });
      names.experiments = null;
      ctx.navigate('/experiments', true);
    } catch (ex) { err.replaceChildren(errorBox(ex)); }
  } }, h('label', { for: 'exp-name' }, 'Name'), name, h('label', { for: 'exp-desc' }, 'Description'), desc, h('button', { type: 'submit', class: 'primary' }, 'Create experiment')), err);
  const params = new URLSearchParams({ page_size: '50' });
  if (q.get('page_token')) params.set('page_token', q.get('page_token'));
  const r = await api('/experiments?' + params);
  const list = r.experiments || [];
  if (!list.length) { main.append(empty('No experiments yet.')); return; }
  main.append(table([
    { label: 'Experiment', cell: (x) => h('a', { href: '/?experiment_id=' + enc(x.experiment_id) }, x.display_name) },
    { label: 'Description', cell: (x) => x.description || '' },
    { label: 'Created', cell: (x) => fmtTime(x.created_at) },
    { label: 'Last run', cell: (x) => fmtTime(x.last_run_created_at) },
    { label: 'Storage', cell: (x) => (x.storage_state || '').toLowerCase() },
  ], list, 'Experiments'), pageBar(ctx, r.next_page_token, '/experiments'));
}

// ---- Compare ----

export async function compare(ctx) {
  const { main, q } = ctx;
  const ids = (q.get('runs') || '').split(',').filter(Boolean);
  main.append(h('h1', {}, 'Compare runs'));
  if (ids.length < 2) { main.append(empty('Select two or more runs on the ', h('a', { href: '/' }, 'runs page'), ' to compare them.')); return; }
  const [c, ...runsList] = await Promise.all([api('/runs:compare?run_ids=' + ids.map(enc).join(',')), ...ids.map((id) => api('/runs/' + enc(id)).catch(() => ({ run_id: id })))]);
  const cols = [{ label: 'Name', cell: (row) => row.name }].concat((c.runs || []).map((rc, i) => ({
    label: h('a', { href: '/runs/' + enc(rc.run_id) }, (runsList[i] && runsList[i].display_name) || rc.run_id),
    cell: (row) => fmtValue(row.kind === 'p' ? rc.parameters[row.name] : rc.metrics[row.name]),
    num: false,
  })));
  const prow = (c.parameter_names || []).map((n) => ({ name: n, kind: 'p' }));
  const mrow = (c.metric_names || []).map((n) => ({ name: n, kind: 'm' }));
  main.append(h('h2', {}, 'Parameters'), prow.length ? table(cols, prow, 'Parameters by run') : empty('No parameters recorded.'),
    h('h2', {}, 'Metrics'), mrow.length ? table(cols, mrow, 'Metrics by run') : empty('No metrics recorded.'));
}

export { irTasks };
