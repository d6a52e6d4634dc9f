// Graphs: the task graph of a pipeline's IR, the run graph (IR merged with the run's
// task details so that tasks show before they start), a small layered layout and its SVG.

// specOf returns the PipelineSpec of a version's or run's pipeline_spec, which may be the
// spec itself or KFP's {pipeline_spec, platform_spec} pair.
export function specOf(raw) {
  if (!raw) return null;
  let s = raw;
  if (typeof s === 'string') {
    try { s = JSON.parse(s); } catch (_) { return null; }
  }
  if (s.pipeline_spec && typeof s.pipeline_spec === 'object') s = s.pipeline_spec;
  if (s.pipelineSpec && typeof s.pipelineSpec === 'object') s = s.pipelineSpec;
  return s;
}

const pick = (o, ...names) => {
  for (const n of names) if (o && o[n] !== undefined) return o[n];
  return undefined;
};

// irTasks flattens the IR's DAGs into tasks keyed by their names joined with '.', as run
// task ids are (without loop iteration indexes). Each has its parent DAG task's key and
// the keys of the sibling tasks it depends on.
export function irTasks(spec) {
  const out = [];
  if (!spec || !spec.root) return out;
  const comps = spec.components || {};
  const seen = new Set();
  function walk(dag, parent, depth) {
    const tasks = (dag && dag.tasks) || {};
    if (depth > 30) return; // a malformed IR that nests itself: stop, do not hang the page
    for (const name of Object.keys(tasks)) {
      const t = tasks[name] || {};
      const key = parent ? parent + '.' + name : name;
      if (seen.has(key)) continue;
      seen.add(key);
      const ref = pick(t, 'componentRef', 'component_ref') || {};
      const comp = comps[ref.name] || {};
      const deps = (pick(t, 'dependentTasks', 'dependent_tasks') || []).filter((d) => tasks[d]);
      const info = pick(t, 'taskInfo', 'task_info') || {};
      const trig = pick(t, 'triggerPolicy', 'trigger_policy') || {};
      const node = {
        key, name, parent, deps: deps.map((d) => (parent ? parent + '.' + d : d)),
        label: info.name || name, component: ref.name || '',
        isDag: !!comp.dag,
        loop: !!(pick(t, 'parameterIterator', 'parameter_iterator') || pick(t, 'artifactIterator', 'artifact_iterator')),
        condition: trig.condition || '',
        exitHandler: (trig.strategy || '') === 'ALL_UPSTREAM_TASKS_COMPLETED',
      };
      out.push(node);
      if (comp.dag) walk(comp.dag, key, depth + 1);
    }
  }
  walk(spec.root.dag, '', 0);
  return out;
}

// pipelineGraph is the IR's graph: one node per task, edges from dependencies and from
// a DAG task to the tasks inside it that depend on nothing there.
export function pipelineGraph(spec) {
  const tasks = irTasks(spec);
  const nodes = tasks.map((t) => ({ id: t.key, label: t.label + (t.loop ? ' [loop]' : ''), isDag: t.isDag, task: t }));
  const edges = [];
  for (const t of tasks) {
    for (const d of t.deps) edges.push([d, t.key]);
    if (!t.deps.length && t.parent) edges.push([t.parent, t.key]);
  }
  return { nodes, edges };
}

// runGraph merges the IR's tasks with a run's task details. Task ids join nested names
// with '.', and loop iterations add their index ("loop.2.train"). Tasks that have not
// started yet show as PENDING; details the IR does not explain still show.
export function runGraph(spec, details) {
  const tasks = irTasks(spec);
  const byId = new Map((details || []).map((d) => [d.task_id, d]));
  const kids = new Map();
  for (const t of tasks) {
    if (!kids.has(t.parent)) kids.set(t.parent, []);
    kids.get(t.parent).push(t);
  }
  const nodes = [], edges = [], used = new Set();
  // iter is the loop iteration path of prefix ("2", "2.0"), shown in labels.
  function expand(irParent, prefix, parentNode, iter) {
    for (const t of kids.get(irParent) || []) {
      const id = prefix ? prefix + '.' + t.name : t.name;
      const d = byId.get(id);
      used.add(id);
      nodes.push({ id, label: iter ? `${t.label} [${iter}]` : t.label, isDag: t.isDag, state: d ? d.state : 'PENDING', detail: d, task: t });
      for (const dep of t.deps) {
        const name = dep.slice(dep.lastIndexOf('.') + 1);
        edges.push([prefix ? prefix + '.' + name : name, id]);
      }
      if (!t.deps.length && parentNode) edges.push([parentNode, id]);
      if (!t.isDag) continue;
      if (!t.loop) { expand(t.key, id, id, iter); continue; }
      const iters = new Set();
      const re = new RegExp('^' + id.replace(/[.*+?^${}()|[\]\\]/g, '\\$&') + '\\.(\\d+)(\\.|$)');
      for (const tid of byId.keys()) {
        const m = re.exec(tid);
        if (m) { iters.add(Number(m[1])); used.add(id + '.' + m[1]); }
      }
      const sub = (n) => (iter ? iter + '.' + n : String(n));
      if (!iters.size) expand(t.key, id + '.*', id, sub('*'));
      else for (const n of [...iters].sort((a, b) => a - b)) expand(t.key, id + '.' + n, id, sub(n));
    }
  }
  expand('', '', '', '');
  const ids = new Set(nodes.map((n) => n.id));
  for (const d of details || []) {
    if (used.has(d.task_id)) continue;
    nodes.push({ id: d.task_id, label: d.display_name || d.task_id, state: d.state, detail: d });
    ids.add(d.task_id);
  }
  for (const d of details || []) {
    if (!used.has(d.task_id) && d.parent_task_id && ids.has(d.parent_task_id)) edges.push([d.parent_task_id, d.task_id]);
  }
  return { nodes, edges: edges.filter(([a, b]) => ids.has(a) && ids.has(b)) };
}

export const NODE_W = 180, NODE_H = 42, GAP_X = 56, GAP_Y = 14;

// layout places nodes in layers left to right: a node's layer is its longest path from
// a source; within a layer, a few barycentre sweeps reduce crossings. Cycles (which a
// valid IR has not) are broken rather than looping.
export function layout(nodes, edges) {
  const idx = new Map(nodes.map((n, i) => [n.id, i]));
  const preds = nodes.map(() => []), succs = nodes.map(() => []);
  for (const [a, b] of edges) {
    const i = idx.get(a), j = idx.get(b);
    if (i === undefined || j === undefined || i === j) continue;
    succs[i].push(j); preds[j].push(i);
  }
  const indeg = preds.map((p) => p.length);
  const layer = nodes.map(() => 0);
  const queue = [];
  indeg.forEach((d, i) => { if (!d) queue.push(i); });
  const done = new Array(nodes.length).fill(false);
  let left = nodes.length;
  for (;;) {
    while (queue.length) {
      const i = queue.shift();
      done[i] = true; left--;
      for (const j of succs[i]) {
        layer[j] = Math.max(layer[j], layer[i] + 1);
        if (--indeg[j] === 0) queue.push(j);
      }
    }
    if (!left) break;
    // A cycle: release the first unfinished node.
    const k = done.findIndex((x, i) => !x && !queue.includes(i));
    indeg[k] = 0; queue.push(k);
  }
  const layers = [];
  nodes.forEach((_, i) => { (layers[layer[i]] = layers[layer[i]] || []).push(i); });
  for (let l = 0; l < layers.length; l++) if (!layers[l]) layers[l] = [];
  const pos = new Array(nodes.length).fill(0);
  const setPos = () => layers.forEach((ly) => ly.forEach((i, k) => { pos[i] = k; }));
  setPos();
  const bary = (i, nb) => (nb[i].length ? nb[i].reduce((s, j) => s + pos[j], 0) / nb[i].length : pos[i]);
  for (let sweep = 0; sweep < 4; sweep++) {
    const down = sweep % 2 === 0;
    const order = down ? layers.keys() : [...layers.keys()].reverse();
    for (const l of order) {
      const nb = down ? preds : succs;
      const b = new Map(layers[l].map((i) => [i, bary(i, nb)]));
      layers[l].sort((x, y) => b.get(x) - b.get(y) || x - y);
      layers[l].forEach((i, k) => { pos[i] = k; });
    }
  }
  const rows = Math.max(1, ...layers.map((l) => l.length));
  const place = new Map();
  layers.forEach((ly, l) => {
    const off = ((rows - ly.length) * (NODE_H + GAP_Y)) / 2;
    ly.forEach((i, k) => place.set(nodes[i].id, { x: 10 + l * (NODE_W + GAP_X), y: 10 + off + k * (NODE_H + GAP_Y) }));
  });
  return {
    place,
    width: 20 + Math.max(1, layers.length) * (NODE_W + GAP_X) - GAP_X,
    height: 20 + rows * (NODE_H + GAP_Y) - GAP_Y,
  };
}

const SVGNS = 'http://www.w3.org/2000/svg';
function el(tag, attrs, parent) {
  const e = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (parent) parent.appendChild(e);
  return e;
}
const clip = (s, n) => (s.length > n ? s.slice(0, n - 1) + '…' : s);

// draw renders a graph as SVG. Each node is focusable and activates with Enter/Space
// or a click: onSelect(node). nodeClass(node) and subtitle(node) style and annotate it.
export function draw(graph, { onSelect, nodeClass, subtitle, selected, label } = {}) {
  const { place, width, height } = layout(graph.nodes, graph.edges);
  const svg = el('svg', { width, height, viewBox: `0 0 ${width} ${height}`, role: 'group', 'aria-label': label || 'graph' });
  const defs = el('defs', {}, svg);
  const mk = el('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: 10, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' }, defs);
  el('path', { d: 'M 0 0 L 10 5 L 0 10 z', fill: '#8d97a8' }, mk);
  const eg = el('g', {}, svg);
  for (const [a, b] of graph.edges) {
    const p = place.get(a), q = place.get(b);
    if (!p || !q) continue;
    const x1 = p.x + NODE_W, y1 = p.y + NODE_H / 2, x2 = q.x, y2 = q.y + NODE_H / 2;
    const mx = (x1 + x2) / 2;
    el('path', { class: 'edge', d: `M${x1},${y1} C${mx},${y1} ${mx},${y2} ${x2},${y2}`, 'marker-end': 'url(#arrow)' }, eg);
  }
  const ng = el('g', {}, svg);
  for (const n of graph.nodes) {
    const p = place.get(n.id);
    const g = el('g', {
      class: 'node ' + (nodeClass ? nodeClass(n) : '') + (n.isDag ? ' dag' : '') + (n.id === selected ? ' sel' : ''),
      transform: `translate(${p.x},${p.y})`, tabindex: 0, role: 'button', 'data-id': n.id,
    }, ng);
    el('title', {}, g).textContent = n.id;
    el('rect', { width: NODE_W, height: NODE_H, rx: 6 }, g);
    const t = el('text', { x: 10, y: 17 }, g);
    t.textContent = clip(n.label || n.id, 24);
    const s = el('text', { x: 10, y: 33, class: 'state' }, g);
    s.textContent = subtitle ? subtitle(n) : '';
    g.setAttribute('aria-label', `${n.label || n.id}${s.textContent ? ': ' + s.textContent : ''}`);
    if (onSelect) {
      g.addEventListener('click', () => onSelect(n));
      g.addEventListener('keydown', (e) => {
        if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); onSelect(n); }
      });
    }
  }
  return svg;
}

// sameShape reports whether two graphs have the same nodes and edges, so that a live
// update can restyle the drawn graph in place (keeping scroll and focus).
export function sameShape(a, b) {
  if (!a || !b || a.nodes.length !== b.nodes.length || a.edges.length !== b.edges.length) return false;
  for (let i = 0; i < a.nodes.length; i++) if (a.nodes[i].id !== b.nodes[i].id) return false;
  for (let i = 0; i < a.edges.length; i++) if (a.edges[i][0] !== b.edges[i][0] || a.edges[i][1] !== b.edges[i][1]) return false;
  return true;
}
