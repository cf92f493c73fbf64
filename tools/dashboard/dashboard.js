// tools/dashboard/dashboard.js - the dashboard's page: it polls the
// troupe command's own gateway, which asks the node's control endpoint
// (docs/control.md): /api/state (info, ps, tree, pools) every second and
// /api/events (the node's ring of recent trace records) a few times a
// second, and draws the tree, the actors table, the message rate and a
// sequence diagram of the last messages. Plain DOM and SVG, no library.
'use strict';

const SVGNS = 'http://www.w3.org/2000/svg';
const MAX_ROWS = 300;          // messages kept in the diagram
const LANE_W = 130, ROW_H = 22, TOP = 8, LEFT = 20;
const SHUTDOWN = -18;          // TR_ESHUTDOWN: a stop on request

const st = {
  since: 0,                    // the next event's sequence number
  known: new Map(),            // id -> {name, behaviour} (ps and spawns)
  lanes: [],                   // [{id, label}]
  laneOf: new Map(),           // actor id -> lane index (restarts share one)
  rows: [],                    // drawn things, oldest first
  prev: null,                  // the last ps, for rates
  rates: [],                   // total messages taken per second
  paused: false,
  fresh: 0,                    // rows not yet drawn
};

function el(tag, attrs, text) {
  const e = document.createElement(tag);
  for (const k in attrs || {}) e.setAttribute(k, attrs[k]);
  if (text !== undefined) e.textContent = text;
  return e;
}

function sv(tag, attrs, text) {
  const e = document.createElementNS(SVGNS, tag);
  for (const k in attrs || {}) e.setAttribute(k, attrs[k]);
  if (text !== undefined) e.textContent = text;
  return e;
}

function label(a) {
  return a.name ? a.name : '<' + a.behaviour + '>';
}

function fmtMs(ms) {
  if (ms < 1000) return ms + 'ms';
  if (ms < 60000) return (ms / 1000).toFixed(1) + 's';
  if (ms < 3600000) return Math.floor(ms / 60000) + 'm' +
    String(Math.floor(ms / 1000) % 60).padStart(2, '0') + 's';
  return Math.floor(ms / 3600000) + 'h' +
    String(Math.floor(ms / 60000) % 60).padStart(2, '0') + 'm';
}

function status(text, bad) {
  const s = document.getElementById('status');
  s.textContent = text;
  s.className = bad ? 'status bad' : 'status';
}

// ------------------------------------------------------------------
// State: header, tree, table, rates

function renderTree(tree, actors) {
  const box = document.getElementById('tree');
  box.replaceChildren();
  const inTree = new Set();
  function node(x, depth) {
    inTree.add(x.id);
    const li = el('li');
    const span = el('span', {class: 'actor' + (x.supervisor ? ' sup' : ''),
                             id: 'tree-' + x.id, 'data-id': x.id},
                    label(x) + ' ');
    span.appendChild(el('span', {class: 'id'},
      '(' + (x.name ? x.behaviour + ', ' : '') + 'id ' + x.id + ')'));
    li.appendChild(span);
    if (x.children && x.children.length && depth < 64) {
      const ul = el('ul');
      for (const c of x.children) ul.appendChild(node(c, depth + 1));
      li.appendChild(ul);
    }
    return li;
  }
  if (tree) {
    const ul = el('ul');
    ul.appendChild(node(tree, 0));
    box.appendChild(ul);
  } else {
    box.appendChild(el('p', {class: 'others'}, 'no supervisor yet'));
  }
  const rest = actors.filter(a => !inTree.has(a.id));
  if (rest.length) {
    const p = el('div', {class: 'others'}, 'not under a supervisor:');
    const ul = el('ul');
    for (const a of rest) {
      const li = el('li');
      li.appendChild(el('span', {class: 'actor', id: 'tree-' + a.id,
                                 'data-id': a.id},
                        label(a) + ' (id ' + a.id + ')'));
      ul.appendChild(li);
    }
    p.appendChild(ul);
    box.appendChild(p);
  }
}

function rate(now, prev, key, dt) {
  if (!prev || now[key] < 0 || prev[key] === undefined || prev[key] < 0)
    return '-';
  const r = (now[key] - prev[key]) / dt;
  return r >= 10 ? String(Math.round(r)) : r.toFixed(1);
}

function renderActors(actors, dt) {
  const prev = new Map((st.prev || []).map(a => [a.id, a]));
  const body = document.querySelector('#actors tbody');
  body.replaceChildren();
  let total = 0;
  for (const a of actors) {
    const p = prev.get(a.id);
    if (p && a.in >= 0 && p.in >= 0) total += Math.max(0, a.in - p.in);
    const tr = el('tr', {id: 'actor-' + a.id,
                         class: a.last_failure ? 'failed' : ''});
    const cells = [a.id, a.name || '-', a.behaviour, a.mode, a.state,
                   a.mailbox < 0 ? '-' : a.mailbox,
                   rate(a, p, 'in', dt), rate(a, p, 'out', dt), a.restarts,
                   a.last_failure || '-'];
    for (const c of cells) tr.appendChild(el('td', {}, String(c)));
    body.appendChild(tr);
  }
  st.prev = actors;
  return dt > 0 ? total / dt : 0;
}

function renderRates(r) {
  st.rates.push(r);
  if (st.rates.length > 60) st.rates.shift();
  const max = Math.max(10, ...st.rates);
  const pts = st.rates.map((v, i) =>
    (i * 600 / 59).toFixed(1) + ',' + (115 - v * 105 / max).toFixed(1));
  const svg = document.getElementById('rates');
  svg.replaceChildren(sv('polyline', {points: pts.join(' ')}),
                      sv('text', {x: 4, y: 12, 'font-size': 11,
                                  fill: '#667085'}, 'max ' + Math.round(max)));
  document.getElementById('rate-now').textContent =
    '(' + Math.round(r) + ' taken/s now)';
}

let lastPoll = 0;
async function pollState() {
  try {
    const res = await fetch('/api/state', {cache: 'no-store'});
    const s = await res.json();
    if (!res.ok || s.error) throw new Error(s.error || res.statusText);
    const info = s.info || {};
    document.getElementById('node-name').textContent =
      '— node ' + info.name;
    document.getElementById('node-facts').textContent =
      'pid ' + info.pid + ', up ' + fmtMs(info.uptime_ms || 0) + ', ' +
      info.actors + ' actors';
    const now = performance.now();
    const dt = lastPoll ? (now - lastPoll) / 1000 : 0;
    lastPoll = now;
    for (const a of s.actors)
      st.known.set(a.id, {name: a.name, behaviour: a.behaviour});
    renderTree(s.tree, s.actors);
    const r = renderActors(s.actors, dt);
    if (dt > 0) renderRates(r);
    const x = info.stats || {};
    document.getElementById('stats').textContent =
      'spawned ' + x.spawned + ', failed ' + x.failed + ', dead letters ' +
      x.dead_letters + ', unhandled ' + x.unhandled;
    status('live');
  } catch (e) {
    status('node not answering: ' + e.message, true);
  }
}

// ------------------------------------------------------------------
// Events: the sequence diagram

function helperHidden(id) {
  const k = st.known.get(id);
  return !document.getElementById('helpers').checked && k &&
    k.behaviour === 'tr_node_service';
}

function laneFor(id) {
  let i = st.laneOf.get(id);
  if (i === undefined) {
    i = st.lanes.length;
    st.lanes.push({id: id});
    st.laneOf.set(id, i);
  }
  return i;
}

// Lane i's rows and actors move to lane into; lane i goes.
function mergeLane(i, into) {
  const fix = l => (l === i ? into : l > i ? l - 1 : l);
  for (const r of st.rows) {
    if (r.lane !== undefined) r.lane = fix(r.lane);
    if (r.from !== undefined) { r.from = fix(r.from); r.to = fix(r.to); }
  }
  for (const [id, l] of st.laneOf) st.laneOf.set(id, fix(l));
  st.lanes.splice(i, 1);
}

function laneLabel(lane) {
  const k = st.known.get(lane.id);
  if (!k) return '#' + lane.id;
  return (k.name || '<' + k.behaviour + '>') + ' #' + lane.id;
}

function addEvent(e) {
  const [, , kind, a, b, size, text] = e;
  if (kind === 'spawn') {
    const slash = text.indexOf('/');
    const name = text.slice(0, slash);
    st.known.set(a, {name, behaviour: text.slice(slash + 1)});
    if (helperHidden(a)) return;
    // A name is one actor at a time: a lane under it is an earlier
    // incarnation (its restart event comes just after this spawn).
    if (name && !st.laneOf.has(a)) {
      const i = st.lanes.findIndex(l => (st.known.get(l.id) || {}).name === name);
      if (i >= 0) { st.laneOf.set(a, i); st.lanes[i].id = a; }
    }
    st.rows.push({kind, lane: laneFor(a)});
  } else if (kind === 'restart') {
    // The new actor takes the lane of the one it replaces, and its label.
    const old = st.laneOf.get(b);
    if (old !== undefined) {
      const mine = st.laneOf.get(a);
      if (mine !== undefined && mine !== old) mergeLane(mine, old);
      st.laneOf.set(a, st.laneOf.get(b));
      st.lanes[st.laneOf.get(b)].id = a;
    }
    st.rows.push({kind, lane: laneFor(a), text: 'restarted as #' + a});
  } else if (kind === 'exit') {
    if (helperHidden(a)) return;
    const crash = size !== 0 && size !== SHUTDOWN;
    st.rows.push({kind: crash ? 'crash' : 'end', lane: laneFor(a), text});
  } else if (kind === 'send') {
    if (helperHidden(a) || helperHidden(b)) return;
    st.rows.push({kind, from: laneFor(a), to: laneFor(b), text});
    const t = document.getElementById('tree-' + b);
    if (t) { t.classList.add('flash');
             setTimeout(() => t.classList.remove('flash'), 300); }
  } else {
    return; // recv and down: the arrow stands for them
  }
  st.fresh++;
}

function renderSeq() {
  if (st.rows.length > MAX_ROWS)
    st.rows.splice(0, st.rows.length - MAX_ROWS);
  const svg = document.getElementById('seq');
  const w = LEFT * 2 + Math.max(1, st.lanes.length) * LANE_W;
  const h = TOP + (st.rows.length + 1) * ROW_H;
  svg.setAttribute('width', w);
  svg.setAttribute('height', h);
  svg.setAttribute('viewBox', '0 0 ' + w + ' ' + h);
  const x = i => LEFT + i * LANE_W + LANE_W / 2;
  const parts = [], heads = [];
  st.lanes.forEach((lane, i) => {
    heads.push(sv('text', {x: x(i), y: 16, 'text-anchor': 'middle',
                           class: 'head', id: 'lane-' + lane.id},
                  laneLabel(lane)));
    parts.push(sv('line', {x1: x(i), y1: 0, x2: x(i), y2: h, class: 'lane'}));
  });
  const head = document.getElementById('seq-head');
  head.setAttribute('width', w);
  head.setAttribute('height', 24);
  head.replaceChildren(...heads);
  const firstNew = st.rows.length - st.fresh;
  st.rows.forEach((r, n) => {
    const y = TOP + n * ROW_H + ROW_H / 2;
    const isNew = n >= firstNew;
    if (r.kind === 'send') {
      if (r.from === r.to) {
        parts.push(sv('path', {d: 'M' + x(r.from) + ' ' + (y - 5) + ' h26 v10 h-26',
                               pathLength: 100,
                               class: 'msg' + (isNew ? ' new' : '')}));
        parts.push(sv('text', {x: x(r.from) + 30, y: y + 4, class: 'tag'},
                      r.text));
      } else {
        const x1 = x(r.from), x2 = x(r.to), dir = x2 > x1 ? 1 : -1;
        // pathLength: the drawing animation's dashes fit any length
        parts.push(sv('line', {x1, y1: y, x2: x2 - dir * 4, y2: y,
                               pathLength: 100,
                               class: 'msg' + (isNew ? ' new' : '')}));
        parts.push(sv('path', {d: 'M' + x2 + ' ' + y + ' l' + (-dir * 7) +
                               ' -4 v8 z', class: 'dot'}));
        parts.push(sv('text', {x: (x1 + x2) / 2, y: y - 3,
                               'text-anchor': 'middle', class: 'tag'},
                      r.text));
      }
    } else if (r.kind === 'spawn') {
      parts.push(sv('circle', {cx: x(r.lane), cy: y, r: 5, class: 'spawn'}));
    } else if (r.kind === 'end') {
      parts.push(sv('line', {x1: x(r.lane) - 8, y1: y, x2: x(r.lane) + 8,
                             y2: y, class: 'end'}));
    } else if (r.kind === 'crash') {
      const cx = x(r.lane);
      parts.push(sv('path', {d: 'M' + (cx - 7) + ' ' + (y - 7) + ' l14 14 M' +
                             (cx + 7) + ' ' + (y - 7) + ' l-14 14',
                             class: 'crash'}));
      parts.push(sv('text', {x: cx + 10, y: y + 4, class: 'crash-text'},
                    r.text));
    } else if (r.kind === 'restart') {
      parts.push(sv('circle', {cx: x(r.lane), cy: y, r: 8, class: 'restart'}));
      parts.push(sv('text', {x: x(r.lane) + 12, y: y + 4}, r.text));
    }
  });
  svg.replaceChildren(...parts);
  st.fresh = 0;
  const scroll = document.getElementById('seq-scroll');
  scroll.scrollTop = scroll.scrollHeight;
  document.getElementById('seq-count').textContent =
    st.rows.length + ' shown';
}

async function pollEvents() {
  try {
    const res = await fetch('/api/events?since=' + st.since,
                            {cache: 'no-store'});
    const s = await res.json();
    if (res.ok && !s.error) {
      for (const e of s.events || []) addEvent(e);
      st.since = s.next;
      if (!st.paused && st.fresh > 0) renderSeq();
    }
  } catch (e) {
    // the state poll says so
  }
}

function loop(fn, ms) {
  const run = async () => { await fn(); setTimeout(run, ms); };
  run();
}

document.getElementById('seq-scroll').addEventListener('scroll', ev => {
  document.getElementById('seq-head-box').scrollLeft = ev.target.scrollLeft;
});

document.getElementById('pause').addEventListener('click', ev => {
  st.paused = !st.paused;
  ev.target.textContent = st.paused ? 'resume' : 'pause';
  if (!st.paused) renderSeq();
});

loop(pollState, 1000);
loop(pollEvents, 300);
