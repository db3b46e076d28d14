// Verzuimhub: dashboard voor samenwerkingsverbanden.
//
// Plain JavaScript without libraries; nothing is loaded from another address. The page reads
// swv-aggregate's own /v1 API with the analyst's bearer token (kept in sessionStorage, never
// in a URL) and draws every chart as inline SVG. A suppressed cell is never drawn as a value:
// it leaves a gap in the chart and an "x" in the hatched "onderdrukt" strip below it, and
// shows as "x" (onderdrukt) in the table. The DOM is built with createElement/textContent
// only (the page runs under Trusted Types with no policy: HTML string sinks would throw).

const TOKEN_KEY = 'verzuimhub.swv.token';
const SVG_NS = 'http://www.w3.org/2000/svg';
const PARALLEL = 6;
const SCHOOL_YEARS_SHOWN = 5;

const NUMBER = new Intl.NumberFormat('nl-NL');
const MONTH_NAME = new Intl.DateTimeFormat('nl-NL', { month: 'short', year: 'numeric', timeZone: 'UTC' });
const DAY_NAME = new Intl.DateTimeFormat('nl-NL', { day: 'numeric', month: 'short', timeZone: 'UTC' });

const COLOURS = ['#1d5fa8', '#b3400e', '#2f7d32', '#6b3fa0', '#a01c4d', '#4d4d4d'];
const SHAPES = ['cirkel', 'vierkant', 'driehoek', 'ruit', 'omgekeerd', 'kruis'];
const DASHES = [null, '7 4', '2 3', '10 3 2 3', '4 4', '1 5'];

const MELDING_SOORTEN = ['V3', 'V4', 'LRV', 'RMC', 'L', 'O'];
const TIERS = ['1', '2', '3'];
const REASONS = {
  primary: 'klein aantal (onder de drempel)',
  secondary: 'afleidbaar uit andere cijfers',
};
const SOURCE_TABLES = [
  ['verzuim-geoorloofd', 'Leerlingen met geoorloofd verzuim'],
  ['verzuim-ongeoorloofd', 'Leerlingen met ongeoorloofd verzuim'],
  ['uren', 'Verzuimde uren'],
  ['niveaus', 'Aanwezigheidsniveaus'],
  ['afstandsonderwijs', 'Afstandsonderwijs'],
  ['meldingen', 'Verzuimmeldingen'],
  ['vrijstellingen-actief', 'Vrijstellingen 5 onder a: van kracht'],
  ['vrijstellingen-gestart', 'Vrijstellingen 5 onder a: begonnen'],
  ['vrijstellingen-beeindigd', 'Vrijstellingen 5 onder a: beëindigd'],
  ['absoluut-verzuim-actief', 'Absoluut verzuim: op de peildatum'],
  ['absoluut-verzuim-gestart', 'Absoluut verzuim: begonnen'],
  ['absoluut-verzuim-beeindigd', 'Absoluut verzuim: beëindigd'],
];

const state = {
  token: null,
  regio: null,
  cache: new Map(),
  generation: 0,
  grids: new Map(),
  loaded: null, // { schooljaar, weeks, months, years }
};

// --- DOM helpers ----------------------------------------------------------------------------

function $(id) {
  return document.getElementById(id);
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  setAttrs(node, attrs);
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

function svgEl(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  setAttrs(node, attrs);
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

function setAttrs(node, attrs) {
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === 'text') node.textContent = String(value);
    else node.setAttribute(key, value === true ? '' : String(value));
  }
}

function svgTitle(text) {
  return svgEl('title', { text });
}

let uniqueCounter = 0;
function uniqueId(prefix) {
  uniqueCounter += 1;
  return `${prefix}-${uniqueCounter}`;
}

function showMessage(text) {
  const box = $('melding');
  box.textContent = text;
  box.hidden = !text;
}

function setProgress(text) {
  $('voortgang').textContent = text;
}

// --- periods (the API's fixed periods: ISO week, month, school year) -----------------------

function pad(n) {
  return String(n).padStart(2, '0');
}

function utcDate(year, month, day) {
  return new Date(Date.UTC(year, month - 1, day));
}

function today() {
  const now = new Date();
  return utcDate(now.getFullYear(), now.getMonth() + 1, now.getDate());
}

function addDays(date, days) {
  return new Date(date.getTime() + days * 86400000);
}

function weekday(date) {
  return (date.getUTCDay() + 6) % 7; // monday 0
}

function isoWeekLabel(date) {
  const thursday = addDays(date, 3 - weekday(date));
  const year = thursday.getUTCFullYear();
  const jan4 = utcDate(year, 1, 4);
  const firstThursday = addDays(jan4, 3 - weekday(jan4));
  const week = 1 + Math.round((thursday - firstThursday) / (7 * 86400000));
  return `${year}-W${pad(week)}`;
}

function schoolYearOf(date) {
  const first = date.getUTCMonth() >= 7 ? date.getUTCFullYear() : date.getUTCFullYear() - 1;
  return `${first}-${first + 1}`;
}

function firstYear(schooljaar) {
  return Number(schooljaar.slice(0, 4));
}

function schoolYearsUpTo(schooljaar, count) {
  const first = firstYear(schooljaar);
  const years = [];
  for (let y = first - count + 1; y <= first; y += 1) years.push(`${y}-${y + 1}`);
  return years;
}

function schoolYearEnd(schooljaar) {
  const last = utcDate(firstYear(schooljaar) + 1, 7, 31);
  const now = today();
  return last < now ? last : now;
}

function weeksOf(schooljaar) {
  const start = utcDate(firstYear(schooljaar), 8, 1);
  const end = schoolYearEnd(schooljaar);
  const weeks = [];
  for (let monday = addDays(start, -weekday(start)); monday <= end; monday = addDays(monday, 7)) {
    weeks.push({ periode: isoWeekLabel(monday), maandag: monday });
  }
  return weeks;
}

function monthsOf(schooljaar) {
  const first = firstYear(schooljaar);
  const end = schoolYearEnd(schooljaar);
  const months = [];
  for (let i = 0; i < 12; i += 1) {
    const start = utcDate(first + Math.floor((7 + i) / 12), ((7 + i) % 12) + 1, 1);
    if (start > end) break;
    months.push({ periode: `${start.getUTCFullYear()}-${pad(start.getUTCMonth() + 1)}`, begin: start });
  }
  return months;
}

function weekTitle(week) {
  const [year, w] = week.periode.split('-W');
  const sunday = addDays(week.maandag, 6);
  return `week ${Number(w)} ${year} (${DAY_NAME.format(week.maandag)} – ${DAY_NAME.format(sunday)})`;
}

// --- token and sign-in ----------------------------------------------------------------------

function decodeClaims(token) {
  const parts = token.split('.');
  if (parts.length !== 3) throw new Error('Dit is geen geldig token.');
  let claims;
  try {
    const base64 = parts[1].replace(/-/g, '+').replace(/_/g, '/');
    claims = JSON.parse(atob(base64.padEnd(Math.ceil(base64.length / 4) * 4, '=')));
  } catch {
    throw new Error('Dit is geen geldig token.');
  }
  if (typeof claims.swv !== 'string' || !claims.swv) {
    throw new Error('Dit token hoort niet bij een samenwerkingsverband.');
  }
  if (typeof claims.exp === 'number' && claims.exp * 1000 < Date.now()) {
    throw new Error('Dit token is verlopen. Vraag een nieuw token aan.');
  }
  return claims;
}

function signIn(token, { focus = true } = {}) {
  const claims = decodeClaims(token.trim());
  state.token = token.trim();
  state.regio = claims.swv.toUpperCase();
  state.cache.clear();
  sessionStorage.setItem(TOKEN_KEY, state.token);
  $('token').value = '';
  $('aangemeld-regio').textContent = state.regio;
  $('aangemeld').hidden = false;
  $('aanmelden').hidden = true;
  $('dashboard').hidden = false;
  showMessage('');
  fillSchoolYears();
  if (focus) $('schooljaar').focus();
  loadSchoolYear($('schooljaar').value);
}

function signOut(message = '') {
  state.generation += 1;
  state.token = null;
  state.regio = null;
  state.cache.clear();
  state.grids.clear();
  sessionStorage.removeItem(TOKEN_KEY);
  $('aangemeld').hidden = true;
  $('dashboard').hidden = true;
  $('aanmelden').hidden = false;
  for (const node of document.querySelectorAll('[data-grafieken], [data-tabel]')) node.replaceChildren();
  setProgress('');
  showMessage(message);
  $('token').focus();
}

async function setUpDevSignIn() {
  if (document.body.dataset.ontwikkelAanmelding !== 'ja') return;
  const form = $('ontwikkel-formulier');
  const select = $('ontwikkel-regio');
  const response = await fetch('/dashboard/ontwikkel-aanmelding', { credentials: 'omit' });
  if (!response.ok) return;
  const body = await response.json();
  select.replaceChildren(
    ...body.regios.map((r) => el('option', { value: r.code, text: `${r.code}: ${r.naam}` })),
  );
  form.hidden = false;
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const answer = await fetch('/dashboard/ontwikkel-aanmelding', {
      method: 'POST',
      credentials: 'omit',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ swvCode: select.value }),
    });
    if (!answer.ok) {
      showMessage('De ontwikkel-aanmelding is mislukt.');
      return;
    }
    try {
      signIn((await answer.json()).token);
    } catch (error) {
      showMessage(error.message);
    }
  });
}

// --- the API --------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, detail) {
    super(detail || `status ${status}`);
    this.status = status;
  }
}

function sleep(ms) {
  return new Promise((resolve) => { setTimeout(resolve, ms); });
}

async function apiGet(path, accept) {
  for (let attempt = 1; ; attempt += 1) {
    const response = await fetch(path, {
      headers: { Authorization: `Bearer ${state.token}`, Accept: accept },
      credentials: 'omit',
      cache: 'no-store',
    });
    if ((response.status === 429 || response.status === 503) && attempt < 4) {
      // Busy: wait as asked (at most 10 s), then try again.
      const wait = Math.min(10, Number(response.headers.get('Retry-After')) || attempt);
      await sleep(wait * 1000);
      continue;
    }
    if (!response.ok) {
      let detail = '';
      try {
        detail = (await response.json()).detail || '';
      } catch {
        detail = '';
      }
      throw new ApiError(response.status, detail);
    }
    return response;
  }
}

function cijfersPath(gebied, periode, tabel = null) {
  const base = gebied === 'landelijk'
    ? '/v1/landelijk/cijfers'
    : `/v1/regios/${encodeURIComponent(state.regio)}/cijfers`;
  return `${base}${tabel ? `/${encodeURIComponent(tabel)}` : ''}?periode=${encodeURIComponent(periode)}`;
}

function cijfers(gebied, periode) {
  const key = `${gebied}|${periode}`;
  if (!state.cache.has(key)) {
    const request = apiGet(cijfersPath(gebied, periode), 'application/json').then((r) => r.json());
    request.catch(() => state.cache.delete(key));
    state.cache.set(key, request);
  }
  return state.cache.get(key);
}

// At most `size` requests at a time; the rest wait in order.
function makeLimiter(size) {
  let running = 0;
  const queue = [];
  const next = () => {
    if (running >= size || !queue.length) return;
    running += 1;
    const { task, resolve, reject } = queue.shift();
    task().then(resolve, reject).finally(() => {
      running -= 1;
      next();
    });
  };
  return (task) => new Promise((resolve, reject) => {
    queue.push({ task, resolve, reject });
    next();
  });
}

function explainError(error) {
  if (error instanceof ApiError) {
    if (error.status === 401) return 'Uw aanmelding is verlopen of ongeldig. Meld u opnieuw aan.';
    if (error.status === 403) return 'Dit token geeft geen toegang tot regiocijfers.';
    if (error.status === 404) return 'Deze regio is niet gevonden voor uw token.';
    return `De cijfers konden niet worden geladen (${error.message}).`;
  }
  return 'De cijfers konden niet worden geladen. Controleer de verbinding en probeer het opnieuw.';
}

// --- published cells ------------------------------------------------------------------------

const MISSING = { waarde: null, onderdrukt: true, reden: null };

function sameCategories(a, b) {
  const keys = Object.keys(b);
  return Object.keys(a).length === keys.length && keys.every((k) => a[k] === b[k]);
}

function cell(body, tabel, categorieen = {}) {
  const table = body.tabellen.find((t) => t.naam === tabel);
  const found = table && table.cellen.find((c) => sameCategories(c.categorieen, categorieen));
  return found ? { waarde: found.waarde, onderdrukt: found.onderdrukt, reden: found.reden } : MISSING;
}

function hours(body, soort) {
  const found = body.uren.find((u) => u.soort === soort && u.sector === null);
  return found ? { waarde: found.uren, onderdrukt: found.onderdrukt, reden: found.reden } : MISSING;
}

function isShown(value) {
  return !value.onderdrukt && value.waarde !== null;
}

function reasonText(value) {
  return REASONS[value.reden] || 'niet beschikbaar';
}

// --- grids: the data behind one chart pair and its table ------------------------------------
//
// rows: [{ key, label }]; columns: [{ gebied, gebiedLabel, reeks, label }];
// values[rowIndex][columnIndex] = { waarde, onderdrukt, reden }.

function areaLabel(gebied) {
  return gebied === 'landelijk' ? 'Landelijk' : `Regio ${state.regio}`;
}

function areaCode(gebied) {
  return gebied === 'landelijk' ? 'NL' : state.regio;
}

function buildGrid({ id, titel, rijKop, reeksKop, rows, series, bodies, pick }) {
  const columns = [];
  for (const gebied of ['regio', 'landelijk']) {
    for (const s of series.filter((x) => !x.alleen || x.alleen === gebied)) {
      columns.push({ gebied, gebiedLabel: areaLabel(gebied), reeks: s.reeks, label: s.label });
    }
  }
  const values = rows.map((row) => columns.map((col) => pick(bodies[col.gebied].get(row.key), col.reeks, row)));
  return { id, titel, rijKop, reeksKop, rows, columns, values };
}

// --- tables and CSV -------------------------------------------------------------------------

function valueCell(value) {
  if (isShown(value)) return el('td', { text: NUMBER.format(value.waarde) });
  const why = reasonText(value);
  return el(
    'td',
    { class: 'onderdrukt', title: `onderdrukt: ${why}`, 'data-onderdrukt': value.reden || 'ontbreekt' },
    el('span', { 'aria-hidden': 'true', text: 'x' }),
    el('span', { class: 'sr-only', text: `onderdrukt, ${why}` }),
  );
}

function renderTable(grid, container, captionText) {
  const tableId = `tabel-${grid.id}`;
  const captionId = `${tableId}-bijschrift`;
  const groups = [];
  for (const col of grid.columns) {
    const last = groups[groups.length - 1];
    if (last && last.gebied === col.gebied) last.span += 1;
    else groups.push({ gebied: col.gebied, label: col.gebiedLabel, span: 1 });
  }
  const table = el(
    'table',
    { id: tableId },
    el('caption', { id: captionId, text: captionText }),
    el(
      'thead',
      {},
      el(
        'tr',
        {},
        el('th', { scope: 'col', rowspan: 2, text: grid.rijKop }),
        ...groups.map((g) => el('th', { scope: 'colgroup', colspan: g.span, text: g.label })),
      ),
      el('tr', {}, ...grid.columns.map((c) => el('th', { scope: 'col', text: c.label }))),
    ),
    el(
      'tbody',
      {},
      ...grid.rows.map((row, r) => el(
        'tr',
        {},
        el('th', { scope: 'row', text: row.label }),
        ...grid.values[r].map((value) => valueCell(value)),
      )),
    ),
  );
  const scroller = el('div', { class: 'tabel-scroll', role: 'region', tabindex: 0, 'aria-labelledby': captionId }, table);
  const button = el('button', {
    type: 'button',
    class: 'knop knop-secundair',
    'data-csv': grid.id,
    text: `CSV downloaden: ${grid.titel.toLowerCase()}`,
  });
  button.addEventListener('click', () => downloadGrid(grid));
  container.replaceChildren(scroller, el('p', { class: 'acties' }, button));
  return tableId;
}

function csvField(text) {
  const value = String(text);
  return /[",\r\n]/.test(value) ? `"${value.replace(/"/g, '""')}"` : value;
}

function gridCsv(grid) {
  const lines = [[grid.rijKop.toLowerCase(), 'gebied', grid.reeksKop, 'value', 'suppression']];
  grid.rows.forEach((row, r) => {
    grid.columns.forEach((col, c) => {
      const value = grid.values[r][c];
      lines.push([
        row.key,
        areaCode(col.gebied),
        col.reeks,
        isShown(value) ? String(value.waarde) : 'x',
        isShown(value) ? '' : value.reden || 'ontbreekt',
      ]);
    });
  });
  return lines.map((line) => line.map(csvField).join(',')).join('\r\n') + '\r\n';
}

function saveBlob(blob, filename) {
  const url = URL.createObjectURL(blob);
  const link = el('a', { href: url, download: filename, hidden: true });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 30000);
}

function downloadGrid(grid) {
  const name = `${grid.id}-${state.regio}-${grid.csvPeriode || state.loaded.schooljaar}.csv`;
  saveBlob(new Blob([gridCsv(grid)], { type: 'text/csv;charset=utf-8' }), name);
  setProgress(`${name} gedownload.`);
}

// --- charts ---------------------------------------------------------------------------------

const CHART = { width: 640, top: 16, plot: 200, left: 56, right: 14, axis: 40, row: 15 };

function niceStep(raw) {
  const power = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 2.5, 5, 10]) {
    if (m * power >= raw) return Math.max(1, m * power);
  }
  return Math.max(1, 10 * power);
}

function marker(shape, x, y, colour, size = 4.5) {
  const common = { fill: colour, stroke: '#ffffff', 'stroke-width': 1 };
  const s = size;
  switch (shape) {
    case 'vierkant':
      return svgEl('rect', { ...common, x: x - s, y: y - s, width: 2 * s, height: 2 * s });
    case 'driehoek':
      return svgEl('path', { ...common, d: `M${x} ${y - s - 1}L${x + s + 1} ${y + s}L${x - s - 1} ${y + s}Z` });
    case 'ruit':
      return svgEl('path', { ...common, d: `M${x} ${y - s - 1}L${x + s + 1} ${y}L${x} ${y + s + 1}L${x - s - 1} ${y}Z` });
    case 'omgekeerd':
      return svgEl('path', { ...common, d: `M${x - s - 1} ${y - s}L${x + s + 1} ${y - s}L${x} ${y + s + 1}Z` });
    case 'kruis':
      return svgEl('path', {
        fill: 'none', stroke: colour, 'stroke-width': 2.5,
        d: `M${x - s} ${y - s}L${x + s} ${y + s}M${x - s} ${y + s}L${x + s} ${y - s}`,
      });
    default:
      return svgEl('circle', { ...common, cx: x, cy: y, r: s });
  }
}

// One chart: kind 'lijn' (a line per series) or 'staaf' (grouped bars), x = the grid's rows.
function drawChart({ kind, grid, gebied, titel, tableId }) {
  const columnIndexes = grid.columns.map((c, i) => [c, i]).filter(([c]) => c.gebied === gebied && !c.nietInGrafiek);
  const series = columnIndexes.map(([c, i], n) => ({
    label: c.label,
    kleur: COLOURS[n % COLOURS.length],
    vorm: SHAPES[n % SHAPES.length],
    streep: DASHES[n % DASHES.length],
    values: grid.rows.map((_, r) => grid.values[r][i]),
  }));
  const n = grid.rows.length;
  const plotWidth = CHART.width - CHART.left - CHART.right;
  const band = plotWidth / Math.max(1, n);
  const stripTop = CHART.top + CHART.plot + CHART.axis;
  const stripHeight = series.length * CHART.row + 8;
  const height = stripTop + 16 + stripHeight + 4;
  const shown = series.flatMap((s) => s.values.filter(isShown).map((v) => v.waarde));
  const max = Math.max(0, ...shown);
  const step = niceStep(Math.max(max, 1) / 4);
  const top = Math.max(step, Math.ceil(max / step) * step);
  const y = (v) => CHART.top + CHART.plot - (v / top) * CHART.plot;
  const bandX = (r) => CHART.left + band * r;
  const barWidth = Math.min(22, (band * 0.8) / Math.max(1, series.length));
  const xOf = (r, s) => (kind === 'staaf'
    ? bandX(r) + band / 2 + (s - (series.length - 1) / 2) * barWidth
    : bandX(r) + band / 2);

  const hatch = uniqueId('arcering');
  const labelId = uniqueId('grafiek-titel');
  const root = svgEl('svg', {
    viewBox: `0 0 ${CHART.width} ${height}`,
    class: 'grafiek-svg',
    role: 'img',
    'aria-labelledby': labelId,
    'aria-describedby': tableId,
    focusable: 'false',
    'data-grafiek': `${grid.id}-${gebied}`,
  });
  root.append(
    svgEl('title', { id: labelId, text: `${titel}. De waarden staan in de tabel onder de grafieken.` }),
    svgEl(
      'defs',
      {},
      svgEl(
        'pattern',
        { id: hatch, width: 6, height: 6, patternUnits: 'userSpaceOnUse', patternTransform: 'rotate(45)' },
        svgEl('rect', { width: 6, height: 6, fill: '#f4f4f4' }),
        svgEl('line', { x1: 0, y1: 0, x2: 0, y2: 6, stroke: '#b5b5b5', 'stroke-width': 2 }),
      ),
    ),
  );

  // y axis and grid lines
  const axis = svgEl('g', { class: 'as' });
  for (let v = 0; v <= top + 1e-9; v += step) {
    axis.append(
      svgEl('line', { x1: CHART.left, x2: CHART.width - CHART.right, y1: y(v), y2: y(v), stroke: v === 0 ? '#4d4d4d' : '#dcdfe3' }),
      svgEl('text', { x: CHART.left - 6, y: y(v) + 4, 'text-anchor': 'end', class: 'as-tekst', text: NUMBER.format(v) }),
    );
  }
  root.append(axis);

  // columns where every series is suppressed: hatched, so the gap is visible and not a zero
  const gaps = svgEl('g', { class: 'gaten' });
  grid.rows.forEach((row, r) => {
    if (series.length && series.every((s) => !isShown(s.values[r]))) {
      gaps.append(svgEl(
        'rect',
        { x: bandX(r) + 1, y: CHART.top, width: Math.max(1, band - 2), height: CHART.plot, fill: `url(#${hatch})`, opacity: 0.7 },
        svgTitle(`${row.label}: onderdrukt`),
      ));
    }
  });
  root.append(gaps);

  // x labels, thinned out to what fits
  const every = Math.max(1, Math.ceil(n / Math.floor(plotWidth / 46)));
  const xLabels = svgEl('g', { class: 'as' });
  grid.rows.forEach((row, r) => {
    if (r % every !== 0) return;
    xLabels.append(svgEl('text', {
      x: bandX(r) + band / 2, y: CHART.top + CHART.plot + 16, 'text-anchor': 'middle', class: 'as-tekst', text: row.kort || row.label,
    }));
  });
  root.append(xLabels);

  // the data
  const data = svgEl('g', { class: 'data' });
  series.forEach((s, si) => {
    if (kind === 'lijn') {
      let d = '';
      let open = false;
      s.values.forEach((v, r) => {
        if (isShown(v)) {
          d += `${open ? 'L' : 'M'}${xOf(r, si).toFixed(1)} ${y(v.waarde).toFixed(1)}`;
          open = true;
        } else {
          open = false; // a suppressed value breaks the line: never drawn as zero
        }
      });
      if (d) {
        data.append(svgEl('path', {
          d, fill: 'none', stroke: s.kleur, 'stroke-width': 2.5, 'stroke-dasharray': s.streep, 'stroke-linejoin': 'round',
        }));
      }
      s.values.forEach((v, r) => {
        if (!isShown(v)) return;
        const m = marker(s.vorm, xOf(r, si), y(v.waarde), s.kleur);
        m.append(svgTitle(`${s.label}, ${grid.rows[r].label}: ${NUMBER.format(v.waarde)}`));
        data.append(m);
      });
    } else {
      s.values.forEach((v, r) => {
        if (!isShown(v)) return;
        const x = xOf(r, si);
        const h = Math.max(0, CHART.top + CHART.plot - y(v.waarde));
        data.append(
          svgEl(
            'rect',
            { x: x - barWidth / 2 + 1, y: y(v.waarde), width: barWidth - 2, height: h, fill: s.kleur },
            svgTitle(`${s.label}, ${grid.rows[r].label}: ${NUMBER.format(v.waarde)}`),
          ),
          svgEl('text', {
            x, y: y(v.waarde) - 4, 'text-anchor': 'middle', class: 'staaf-tekst', text: NUMBER.format(v.waarde),
          }),
        );
      });
    }
  });
  root.append(data);
  if (!shown.length) {
    root.append(svgEl('text', {
      x: CHART.left + plotWidth / 2, y: CHART.top + CHART.plot / 2, 'text-anchor': 'middle', class: 'leeg-tekst',
      text: 'Alle waarden onderdrukt',
    }));
  }

  // the "onderdrukt" strip: an x per suppressed value, one row per series
  const strip = svgEl('g', { class: 'strook' });
  strip.append(
    svgEl('text', { x: CHART.left, y: stripTop + 10, class: 'strook-titel', text: 'onderdrukt (x):' }),
    svgEl('rect', {
      x: CHART.left, y: stripTop + 16, width: plotWidth, height: stripHeight, fill: `url(#${hatch})`, stroke: '#8a8a8a',
    }),
  );
  series.forEach((s, si) => {
    const rowY = stripTop + 16 + 4 + si * CHART.row + CHART.row / 2;
    strip.append(marker(s.vorm, CHART.left - 12, rowY, s.kleur, 4));
    s.values.forEach((v, r) => {
      if (isShown(v)) return;
      strip.append(svgEl(
        'text',
        { x: xOf(r, si), y: rowY + 4, 'text-anchor': 'middle', class: 'strook-x', fill: s.kleur, 'data-onderdrukt': 'x', text: 'x' },
        svgTitle(`${s.label}, ${grid.rows[r].label}: onderdrukt, ${reasonText(v)}`),
      ));
    });
  });
  root.append(strip);

  const legend = el('ul', { class: 'legenda' }, ...series.map((s) => {
    const swatch = svgEl('svg', { viewBox: '0 0 28 12', width: 28, height: 12, 'aria-hidden': 'true', focusable: 'false' });
    if (kind === 'lijn') {
      swatch.append(svgEl('line', { x1: 1, x2: 27, y1: 6, y2: 6, stroke: s.kleur, 'stroke-width': 2.5, 'stroke-dasharray': s.streep }));
      swatch.append(marker(s.vorm, 14, 6, s.kleur, 3.5));
    } else {
      swatch.append(svgEl('rect', { x: 4, y: 1, width: 20, height: 10, fill: s.kleur }));
    }
    return el('li', {}, swatch, document.createTextNode(s.label));
  }));
  const captionId = uniqueId('grafiek-bijschrift');
  return el(
    'figure',
    { class: 'grafiek', 'aria-labelledby': captionId },
    el('figcaption', { id: captionId, text: areaLabel(gebied) }),
    root,
    legend,
  );
}

function renderSection(grid, kind, captionText) {
  state.grids.set(grid.id, grid);
  const tableId = renderTable(grid, document.querySelector(`[data-tabel="${grid.id}"]`), captionText);
  const charts = ['regio', 'landelijk'].map((gebied) => drawChart({
    kind, grid, gebied, titel: `${captionText}: ${areaLabel(gebied).toLowerCase()}`, tableId,
  }));
  document.querySelector(`[data-grafieken="${grid.id}"]`).replaceChildren(...charts);
}

// --- the sections ---------------------------------------------------------------------------

function renderVerzuim(loaded) {
  const rows = loaded.weeks.map((w) => ({
    key: w.periode, label: weekTitle(w), kort: `wk ${Number(w.periode.slice(6))}`,
  }));
  const grid = buildGrid({
    id: 'verzuim',
    titel: 'Verzuim per week',
    rijKop: 'Week',
    reeksKop: 'reeks',
    rows,
    bodies: loaded.bodies.weeks,
    series: [
      { reeks: 'leerlingen_geoorloofd', label: 'Leerlingen geoorloofd' },
      { reeks: 'leerlingen_ongeoorloofd', label: 'Leerlingen ongeoorloofd' },
      { reeks: 'uren_geoorloofd', label: 'Uren geoorloofd' },
      { reeks: 'uren_ongeoorloofd', label: 'Uren ongeoorloofd' },
    ],
    pick: (body, reeks) => {
      const [what, soort] = reeks.split('_');
      return what === 'uren' ? hours(body, soort) : cell(body, `verzuim-${soort}`);
    },
  });
  for (const col of grid.columns) col.nietInGrafiek = col.reeks.startsWith('uren');
  renderSection(grid, 'lijn', `Verzuim per week, schooljaar ${loaded.schooljaar}`);
}

function renderMeldingen(loaded) {
  const rows = loaded.months.map((m) => ({ key: m.periode, label: MONTH_NAME.format(m.begin), kort: MONTH_NAME.format(m.begin).split(' ')[0] }));
  const grid = buildGrid({
    id: 'meldingen',
    titel: 'Verzuimmeldingen per maand',
    rijKop: 'Maand',
    reeksKop: 'soort',
    rows,
    bodies: loaded.bodies.months,
    series: [
      ...MELDING_SOORTEN.map((s) => ({ reeks: s, label: s })),
      { reeks: 'totaal', label: 'Totaal' },
    ],
    pick: (body, soort) => cell(body, 'meldingen', soort === 'totaal' ? {} : { soort }),
  });
  renderSection(grid, 'lijn', `Verzuimmeldingen per maand en soort, schooljaar ${loaded.schooljaar}`);
}

function renderNiveaus(loaded) {
  const periode = $('niveau-periode').value || loaded.schooljaar;
  const sample = loaded.bodies.niveaus.regio.get(periode);
  if (!sample) return;
  const sectors = sample.tabellen.find((t) => t.naam === 'niveaus').categorieen.sector;
  const rows = [
    ...TIERS.map((t) => ({ key: t, label: `Niveau ${t}` })),
    { key: 'totaal', label: 'Totaal' },
  ];
  const bodies = {
    regio: new Map(rows.map((r) => [r.key, loaded.bodies.niveaus.regio.get(periode)])),
    landelijk: new Map(rows.map((r) => [r.key, loaded.bodies.niveaus.landelijk.get(periode)])),
  };
  const grid = buildGrid({
    id: 'niveaus',
    titel: 'Aanwezigheidsniveaus',
    rijKop: 'Niveau',
    reeksKop: 'sector',
    rows,
    bodies,
    series: [
      ...sectors.map((s) => ({ reeks: s, label: s, alleen: 'regio' })),
      { reeks: 'totaal', label: 'Alle sectoren' },
    ],
    pick: (body, sector, row) => {
      const cats = {};
      if (row.key !== 'totaal') cats.niveau = row.key;
      if (sector !== 'totaal') cats.sector = sector;
      return cell(body, 'niveaus', cats);
    },
  });
  // the chart shows the tiers over all sectors; the table also per sector and the total
  for (const col of grid.columns) col.nietInGrafiek = col.reeks !== 'totaal';
  const chartGrid = { ...grid, rows: rows.slice(0, 3), values: grid.values.slice(0, 3) };
  state.grids.set(grid.id, grid);
  const label = $('niveau-periode').selectedOptions[0]?.textContent || periode;
  const captionText = `Leerlingen per aanwezigheidsniveau, ${label}`;
  const tableId = renderTable(grid, document.querySelector('[data-tabel="niveaus"]'), captionText);
  const charts = ['regio', 'landelijk'].map((gebied) => drawChart({
    kind: 'staaf', grid: chartGrid, gebied, titel: `${captionText}: ${areaLabel(gebied).toLowerCase()}`, tableId,
  }));
  document.querySelector('[data-grafieken="niveaus"]').replaceChildren(...charts);
  grid.csvPeriode = periode;
}

function renderVrijstellingen(loaded) {
  const rows = loaded.years.map((y) => ({ key: y, label: y }));
  const grid = buildGrid({
    id: 'vrijstellingen',
    titel: 'Vrijstellingen 5 onder a per schooljaar',
    rijKop: 'Schooljaar',
    reeksKop: 'figuur',
    rows,
    bodies: loaded.bodies.years,
    series: [
      { reeks: 'actief', label: 'Van kracht op de peildatum' },
      { reeks: 'gestart', label: 'Begonnen' },
      { reeks: 'beeindigd', label: 'Beëindigd' },
    ],
    pick: (body, figuur) => cell(body, `vrijstellingen-${figuur}`),
  });
  renderSection(grid, 'staaf', `Vrijstellingen 5 onder a, schooljaren ${loaded.years[0]} tot en met ${loaded.schooljaar}`);
}

function fillNiveauPeriods(loaded) {
  const select = $('niveau-periode');
  const previous = select.value;
  select.replaceChildren(
    el('option', { value: loaded.schooljaar, text: `Schooljaar ${loaded.schooljaar}` }),
    ...loaded.months.map((m) => el('option', { value: m.periode, text: MONTH_NAME.format(m.begin) })),
  );
  if ([...select.options].some((o) => o.value === previous)) select.value = previous;
}

function fillSourcePeriods(loaded) {
  const select = $('bron-periode');
  select.replaceChildren(
    el('option', { value: loaded.schooljaar, text: `Schooljaar ${loaded.schooljaar}` }),
    el('optgroup', { label: 'Maanden' }, ...loaded.months.map((m) => el('option', { value: m.periode, text: MONTH_NAME.format(m.begin) }))),
    el('optgroup', { label: 'Schoolweken' }, ...loaded.weeks.map((w) => el('option', { value: w.periode, text: weekTitle(w) }))),
  );
}

function fillSchoolYears() {
  const select = $('schooljaar');
  const current = schoolYearOf(today());
  select.replaceChildren(
    ...schoolYearsUpTo(current, SCHOOL_YEARS_SHOWN).reverse().map((y) => el('option', { value: y, text: y })),
  );
  select.value = current;
}

function setBusy(ids, busy) {
  for (const id of ids) {
    const section = $(`sectie-${id}`);
    section.setAttribute('aria-busy', busy ? 'true' : 'false');
    if (busy) {
      section.querySelector('[data-grafieken]').replaceChildren(el('p', { class: 'laden', text: 'Cijfers laden…' }));
      section.querySelector('[data-tabel]').replaceChildren();
    }
  }
}

function byArea(periods, results) {
  const maps = { regio: new Map(), landelijk: new Map() };
  periods.forEach((p, i) => {
    maps.regio.set(p, results[i].regio);
    maps.landelijk.set(p, results[i].landelijk);
  });
  return maps;
}

// Loads every period of the school year (region and national, through the /v1 API) and draws
// each section as soon as its own periods are in: school years and months first (few), then
// the weeks.
async function loadSchoolYear(schooljaar) {
  state.generation += 1;
  const generation = state.generation;
  const current = () => generation === state.generation;
  const weeks = weeksOf(schooljaar);
  const months = monthsOf(schooljaar);
  const years = schoolYearsUpTo(schooljaar, SCHOOL_YEARS_SHOWN);
  const total = 2 * (weeks.length + months.length + years.length);
  const limit = makeLimiter(PARALLEL);
  let done = 0;
  const fetchBoth = (periode) => Promise.all(['regio', 'landelijk'].map((gebied) => limit(() => cijfers(gebied, periode)).then((body) => {
    done += 1;
    if (current() && (done % 5 === 0 || done === total)) setProgress(`Cijfers laden: ${done} van ${total}`);
    return body;
  }))).then(([regio, landelijk]) => ({ regio, landelijk }));
  const group = (periods) => Promise.all(periods.map(fetchBoth)).then((results) => byArea(periods, results));

  const loaded = { schooljaar, weeks, months, years, bodies: {} };
  state.loaded = loaded;
  setProgress(`Cijfers laden: 0 van ${total}`);
  setBusy(['verzuim', 'meldingen', 'niveaus', 'vrijstellingen'], true);
  const yearsLoaded = group(years);
  const monthsLoaded = group(months.map((m) => m.periode));
  const weeksLoaded = group(weeks.map((w) => w.periode));
  for (const pending of [yearsLoaded, monthsLoaded, weeksLoaded]) pending.catch(() => undefined);
  delete document.body.dataset.geladen;
  fillSourcePeriods(loaded);
  try {
    loaded.bodies.years = await yearsLoaded;
    if (!current()) return;
    const first = loaded.bodies.years.regio.get(schooljaar);
    $('drempel').textContent = NUMBER.format(first.drempel);
    $('afronding').hidden = first.afrondingsbasis === null;
    $('afrondingsbasis').textContent = first.afrondingsbasis === null ? '' : NUMBER.format(first.afrondingsbasis);
    renderVrijstellingen(loaded);
    setBusy(['vrijstellingen'], false);
    loaded.bodies.months = await monthsLoaded;
    if (!current()) return;
    loaded.bodies.niveaus = {
      regio: new Map([...loaded.bodies.months.regio, ...loaded.bodies.years.regio]),
      landelijk: new Map([...loaded.bodies.months.landelijk, ...loaded.bodies.years.landelijk]),
    };
    fillNiveauPeriods(loaded);
    renderMeldingen(loaded);
    renderNiveaus(loaded);
    setBusy(['meldingen', 'niveaus'], false);
    loaded.bodies.weeks = await weeksLoaded;
    if (!current()) return;
    renderVerzuim(loaded);
    setBusy(['verzuim'], false);
  } catch (error) {
    if (!current()) return;
    if (error instanceof ApiError && [401, 403, 404].includes(error.status)) {
      signOut(explainError(error));
    } else {
      setProgress('');
      showMessage(explainError(error));
    }
    return;
  }
  showMessage('');
  setProgress(`Cijfers van schooljaar ${schooljaar} geladen (${total} opvragingen).`);
  document.body.dataset.geladen = schooljaar;
}

async function downloadSource(event) {
  event.preventDefault();
  const gebied = $('bron-gebied').value;
  const periode = $('bron-periode').value;
  const tabel = $('bron-tabel').value;
  try {
    const response = await apiGet(`${cijfersPath(gebied, periode, tabel)}&formaat=csv`, 'text/csv');
    const name = `${tabel}-${areaCode(gebied)}-${periode}.csv`;
    saveBlob(await response.blob(), name);
    setProgress(`${name} gedownload.`);
  } catch (error) {
    showMessage(explainError(error));
  }
}

// --- start ----------------------------------------------------------------------------------

function start() {
  $('bron-tabel').replaceChildren(...SOURCE_TABLES.map(([value, text]) => el('option', { value, text })));
  $('aanmeld-formulier').addEventListener('submit', (event) => {
    event.preventDefault();
    const token = $('token').value;
    if (!token.trim()) {
      showMessage('Vul uw SWV-token in.');
      $('token').focus();
      return;
    }
    try {
      signIn(token);
    } catch (error) {
      showMessage(error.message);
      $('token').focus();
    }
  });
  $('afmelden').addEventListener('click', () => signOut('U bent afgemeld.'));
  $('schooljaar').addEventListener('change', () => loadSchoolYear($('schooljaar').value));
  $('niveau-periode').addEventListener('change', () => state.loaded && renderNiveaus(state.loaded));
  $('bron').addEventListener('submit', downloadSource);
  setUpDevSignIn().catch(() => undefined);
  const stored = sessionStorage.getItem(TOKEN_KEY);
  if (stored) {
    try {
      signIn(stored, { focus: false });
    } catch (error) {
      signOut(error.message);
    }
  }
}

start();
