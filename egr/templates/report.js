// report.html's script: the decoy table (pages, sorting, filtering), the sparklines and per-residue tracks,
// and hovering the plots. Its data is the page's one JSON block (egr.report.render_html): decoys (per decoy
// its track, details and links), plots (the points of each plot, by its data-plot) and residue_names.
(function () {
  const PAGE = JSON.parse(document.getElementById('egr-data').textContent);
  const DATA = PAGE.decoys;
  const table = document.getElementById('decoy-table');
  // Rows live in an inert <template>: only the current page is in the document, so a run of
  // thousands of decoys costs the browser one page of layout.
  const tbody = table.tBodies[0];
  const rows = Array.from(document.getElementById('decoy-rows').content.children);
  const ncol = table.tHead.rows[0].cells.length;
  const $ = id => document.getElementById(id);
  const q = $('filter'), st = $('status-filter'), size = $('page-size');
  const info = $('page-info'), prev = $('prev'), next = $('next');
  let visible = rows.slice(), page = 0;
  const esc = s => String(s).replace(/[&<>"]/g, c => ({'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;'}[c]));
  const per = () => +size.value || visible.length || 1;
  const isOpen = row => { const n = row.nextElementSibling; return !!(n && n.classList.contains('detail')); };

  function render() {
    const n = per(), pages = Math.max(1, Math.ceil(visible.length / n));
    page = Math.min(Math.max(page, 0), pages - 1);
    const shown = visible.slice(page * n, page * n + n);
    tbody.replaceChildren(...shown);
    rows.forEach(r => r.classList.remove('open'));
    info.textContent = visible.length
      ? `${page * n + 1}–${page * n + shown.length} of ${visible.length}` +
        (visible.length < rows.length ? ` (filtered from ${rows.length})` : '')
      : 'no decoy matches';
    prev.disabled = page === 0;
    next.disabled = page >= pages - 1;
    shown.forEach(r => { const c = r.querySelector('canvas.spark:not([data-drawn])'); if (c) io.observe(c); });
  }

  function filter() {
    const text = q.value.trim().toLowerCase(), s = st.value;
    visible = rows.filter(r => (!s || r.dataset.status === s) && (!text || r.dataset.search.includes(text)));
    page = 0;
    render();
  }

  // sorting: numbers by data-v (empty cells last either way), text by content
  table.tHead.addEventListener('click', e => {
    const th = e.target.closest('th');
    if (!th || !th.dataset.sort) return;
    const col = th.cellIndex, num = th.dataset.sort === 'n', dir = th.classList.contains('asc') ? -1 : 1;
    table.tHead.querySelectorAll('th').forEach(h => h.classList.remove('asc', 'desc'));
    th.classList.add(dir > 0 ? 'asc' : 'desc');
    const key = r => {
      const c = r.cells[col], v = c.dataset.v;
      if (num) return v === undefined || v === '' ? null : +v;
      return c.textContent.toLowerCase();
    };
    const keyed = rows.map(r => [key(r), r]);
    keyed.sort((a, b) => {
      const x = a[0], y = b[0];
      if (x === null) return y === null ? 0 : 1;
      if (y === null) return -1;
      return x < y ? -dir : x > y ? dir : 0;
    });
    rows.splice(0, rows.length, ...keyed.map(k => k[1]));
    filter();
  });
  q.addEventListener('input', filter);
  st.addEventListener('change', filter);
  size.addEventListener('change', () => { page = 0; render(); });
  prev.addEventListener('click', () => { page--; render(); });
  next.addEventListener('click', () => { page++; render(); });

  // residue positions: chains side by side with a small gap, as fractions of the width
  function layout(t) {
    const n = t.p.length, chains = [], ci = new Int32Array(n);
    let i = 0;
    for (const [c, , k] of t.c) {
      const last = chains[chains.length - 1];
      if (!last || last.name !== c) chains.push({name: c, start: i, end: i + k - 1}); else last.end = i + k - 1;
      i += k;
    }
    chains.forEach((c, j) => { for (let r = c.start; r <= c.end; r++) ci[r] = j; });
    const gap = chains.length > 1 ? Math.max(1, n * 0.012) : 0;
    const span = Math.max(1, n - 1 + gap * (chains.length - 1));
    return {n, chains, ci, span, pos: r => (r + ci[r] * gap) / span};
  }

  // one polyline per chain; a missing value (null) breaks the line
  function pathOf(v, L, X, Y) {
    let d = '', pen = false;
    for (let i = 0; i < L.n; i++) {
      const y = v[i];
      if (y === null || (i > 0 && L.ci[i] !== L.ci[i - 1])) { pen = false; if (y === null) continue; }
      d += (pen ? 'L' : 'M') + X(i).toFixed(1) + ' ' + Y(y).toFixed(1);
      pen = true;
    }
    return d;
  }

  function spark(c) {
    const t = DATA[+c.dataset.i];
    if (!t || !t.p) return;
    c.dataset.drawn = 1;
    const L = layout(t), dpr = window.devicePixelRatio || 1, W = 120, H = 26;
    c.width = W * dpr; c.height = H * dpr;
    const g = c.getContext('2d');
    g.scale(dpr, dpr);
    const X = i => 2 + L.pos(i) * (W - 4), Y = v => 2 + (1 - v / 100) * (H - 7);
    g.fillStyle = 'rgba(245,158,11,.55)';
    (t.f || []).forEach(([a, b]) => g.fillRect(X(a) - .5, H - 3, Math.max(1, X(b) - X(a) + 1), 3));
    const line = (v, color, width) => {
      g.strokeStyle = color; g.lineWidth = width;
      g.stroke(new Path2D(pathOf(v, L, X, Y)));
    };
    if (t.t) line(t.t, 'rgba(249,115,22,.9)', 1);
    line(t.p, '#2563eb', 1.2);
  }
  const io = new IntersectionObserver(entries => entries.forEach(e => {
    if (e.isIntersecting) { spark(e.target); io.unobserve(e.target); }
  }), {rootMargin: '300px'});

  const THREE = PAGE.residue_names;  // one-letter code -> residue name (X, not a standard residue: UNK)
  function labels(t) {
    const out = [];
    for (const [c, s, k] of t.c) for (let j = 0; j < k; j++) out.push(c + ' ' + (typeof s === 'number' ? s + j : s));
    return out;
  }

  // the per-residue track of one decoy, as SVG, with a readout under the pointer
  function track(box, t) {
    const L = layout(t), W = Math.max(700, Math.min(1240, (table.parentElement.clientWidth || 1130) - 40));
    const H = 210, l = 46, r = 14, top = 24, bottom = 40, pw = W - l - r, ph = H - top - bottom;
    const X = i => l + L.pos(i) * pw, Y = v => top + (1 - v / 100) * ph, rw = Math.max(pw / L.span, 1);
    const iface = new Uint8Array(L.n);
    (t.f || []).forEach(([a, z]) => { for (let i = a; i <= z; i++) iface[i] = 1; });
    const s = [`<svg class="plot" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}">`];
    L.chains.forEach((c, j) => {
      const x0 = X(c.start) - rw / 2, x1 = X(c.end) + rw / 2;
      s.push(`<rect x="${x0}" y="${top}" width="${x1 - x0}" height="${ph}" fill="${j % 2 ? '#f8fafc' : '#fff'}"
        stroke="#e2e8f0"/><text x="${(x0 + x1) / 2}" y="${top - 8}" text-anchor="middle" class="label">chain
        ${esc(c.name)}</text>`);
    });
    [0, 25, 50, 75, 100].forEach(v => s.push(`<line x1="${l}" x2="${l + pw}" y1="${Y(v)}" y2="${Y(v)}" class="grid"/>
      <text x="${l - 6}" y="${Y(v) + 4}" text-anchor="end" class="tick">${(v / 100).toFixed(2)}</text>`));
    (t.f || []).forEach(([a, z]) => {
      const x0 = X(a) - rw / 2, x1 = X(z) + rw / 2;
      s.push(`<rect x="${x0}" y="${top}" width="${x1 - x0}" height="${ph}" fill="#f59e0b" fill-opacity=".13"/>
        <rect x="${x0}" y="${top + ph + 3}" width="${x1 - x0}" height="6" fill="#f59e0b"/>`);
    });
    if (t.t) s.push(`<path d="${pathOf(t.t, L, X, Y)}" fill="none" stroke="#f97316" stroke-width="1.4"
      stroke-opacity=".9"/>`);
    s.push(`<path d="${pathOf(t.p, L, X, Y)}" fill="none" stroke="#2563eb" stroke-width="1.7"/>
      <text x="${l + pw / 2}" y="${H - 6}" text-anchor="middle" class="axis">residue (chains in file order;
      amber = interface residue)</text><line class="cur" x1="0" x2="0" y1="${top}" y2="${top + ph}" stroke="#0f172a"
      stroke-opacity=".35" visibility="hidden"/></svg>`);
    const legend = '<div class="legend"><span><i style="background:#2563eb"></i>predicted LDDT-Cα</span>' +
      (t.t ? '<span><i style="background:#f97316"></i>true LDDT-Cα</span>'
           : '<span class="muted">true LDDT-Cα not available (it comes with a native)</span>') +
      '<span><i class="box" style="background:#f59e0b"></i>interface residue (heavy atom ≤ 8 Å from another chain)' +
      '</span></div>';
    box.innerHTML = legend + s.join('') + '<div class="readout">&nbsp;</div>';
    const svg = box.querySelector('svg'), cur = svg.querySelector('.cur'), out = box.querySelector('.readout');
    const names = labels(t), xs = Array.from({length: L.n}, (_, i) => X(i));
    const f = v => v === null ? '–' : (v / 100).toFixed(2);
    svg.addEventListener('mousemove', e => {
      const R = svg.getBoundingClientRect(), x = (e.clientX - R.left) * W / R.width;
      let lo = 0, hi = L.n - 1;
      while (lo < hi) { const m = (lo + hi) >> 1; if (xs[m] < x) lo = m + 1; else hi = m; }
      if (lo > 0 && x - xs[lo - 1] < xs[lo] - x) lo--;
      cur.setAttribute('x1', xs[lo]); cur.setAttribute('x2', xs[lo]); cur.setAttribute('visibility', 'visible');
      out.textContent = `${names[lo]} ${THREE[t.s[lo]] || 'UNK'}   predicted ${f(t.p[lo])}` +
        (t.t ? `   true ${f(t.t[lo])}` : '') + (iface[lo] ? '   interface' : '');
    });
    svg.addEventListener('mouseleave', () => cur.setAttribute('visibility', 'hidden'));
  }

  function open(row) {
    const t = DATA[+row.dataset.i] || {}, d = document.createElement('tr');
    d.className = 'detail';
    const lines = (t.i || []).map(([k, v]) => `<dt>${esc(k)}</dt><dd>${esc(v)}</dd>`).join('') +
      ((t.l || []).length
        ? `<dt>files</dt><dd>${t.l.map(([n, h]) => `<a href="${esc(h)}">${esc(n)}</a>`).join(' · ')}</dd>` : '');
    const empty = t.p ? '' : '<span class="empty">no per-residue data for this decoy</span>';
    d.innerHTML = `<td colspan="${ncol}"><div class="trackbox">${empty}</div><dl class="info">${lines}</dl></td>`;
    row.after(d);
    row.classList.add('open');
    if (t.p) track(d.querySelector('.trackbox'), t);
  }
  tbody.addEventListener('click', e => {
    if (e.target.closest('a')) return;
    const row = e.target.closest('tr.main');
    if (!row) return;
    if (isOpen(row)) { row.nextElementSibling.remove(); row.classList.remove('open'); } else open(row);
  });
  render();

  // open the first decoy with a track once the table is on screen (not at load: that would force layout early)
  const first = rows.find(r => DATA[+r.dataset.i].t) || rows.find(r => DATA[+r.dataset.i].p);
  if (first) {
    const seen = new IntersectionObserver(entries => {
      if (!entries.some(e => e.isIntersecting)) return;
      seen.disconnect();
      if (first.isConnected && !isOpen(first)) open(first);
    });
    seen.observe(table);
  }

  // plots: hover names the nearest decoy, a click opens it in the table
  const tip = document.createElement('div');
  tip.className = 'tip';
  document.body.appendChild(tip);
  const fmt = v => (Math.abs(v) < 1 && v !== 0 ? v.toFixed(4) : v.toFixed(3)).replace('-', '−');
  document.querySelectorAll('svg.pts').forEach(svg => {
    const plot = PAGE.plots[svg.dataset.plot], pts = plot.pts, names = plot.series, vb = svg.viewBox.baseVal;
    const near = e => {
      const R = svg.getBoundingClientRect();
      const x = (e.clientX - R.left) * vb.width / R.width, y = (e.clientY - R.top) * vb.height / R.height;
      let best = null, bd = 64;
      for (const p of pts) { const d = (p[0] - x) ** 2 + (p[1] - y) ** 2; if (d < bd) { bd = d; best = p; } }
      return best;
    };
    svg.addEventListener('mousemove', e => {
      const p = near(e);
      if (!p) { tip.style.display = 'none'; svg.style.cursor = ''; return; }
      const value = p.length > 5 ? fmt(p[4]) + ' → ' + fmt(p[5]) : fmt(p[4]);
      tip.textContent = `${DATA[p[2]].id} · ${names[p[3]]}: ${value}`;
      tip.style.display = 'block';
      tip.style.left = (e.pageX + 12) + 'px';
      tip.style.top = (e.pageY + 12) + 'px';
      svg.style.cursor = 'pointer';
    });
    svg.addEventListener('mouseleave', () => { tip.style.display = 'none'; });
    svg.addEventListener('click', e => {
      const p = near(e);
      if (!p) return;
      q.value = ''; st.value = '';
      filter();
      const at = visible.findIndex(r => +r.dataset.i === p[2]);
      page = Math.floor(at / per());
      render();
      const row = visible[at];
      if (!isOpen(row)) open(row);
      row.scrollIntoView({block: 'center'});
    });
  });

  // the end of the set-up: tests (and a curious reader) see that the script ran through
  document.body.dataset.rendered = '1';
})();
