// mwl's worklist page: plain JavaScript on the REST API (docs/http.md), no
// build step and nothing loaded from elsewhere. Every value from the
// server goes into the page as text (textContent), never as HTML.
'use strict';

// ---- DICOM JSON (PS3.18 F.2) ------------------------------------------------

// The attributes the page reads and writes: keyword -> tag, VR, and where it
// lives (the item, or its Scheduled Procedure Step Sequence item).
const ATTR = {
  PatientName: { tag: '00100010', vr: 'PN', max: 64 },
  PatientID: { tag: '00100020', vr: 'LO', max: 64 },
  PatientBirthDate: { tag: '00100030', vr: 'DA' },
  PatientSex: { tag: '00100040', vr: 'CS', max: 16 },
  AccessionNumber: { tag: '00080050', vr: 'SH', max: 16 },
  StudyInstanceUID: { tag: '0020000D', vr: 'UI', max: 64 },
  RequestedProcedureID: { tag: '00401001', vr: 'SH', max: 16 },
  RequestedProcedureDescription: { tag: '00321060', vr: 'LO', max: 64 },
  ScheduledProcedureStepID: { tag: '00400009', vr: 'SH', max: 16, sps: true },
  Modality: { tag: '00080060', vr: 'CS', max: 16, sps: true },
  ScheduledStationAETitle: { tag: '00400001', vr: 'AE', max: 16, sps: true },
  ScheduledProcedureStepStartDate: { tag: '00400002', vr: 'DA', sps: true },
  ScheduledProcedureStepStartTime: { tag: '00400003', vr: 'TM', sps: true },
  ScheduledProcedureStepDescription: { tag: '00400007', vr: 'LO', max: 64, sps: true },
  ScheduledProcedureStepStatus: { tag: '00400020', vr: 'CS', max: 16, sps: true },
};
const SPS_SEQUENCE = '00400100';
// What `mwl import` refuses an item without (src/worklist/check.c: PS3.4
// Table K.6-1 return type 1 keys).
const REQUIRED = ['PatientName', 'PatientID', 'StudyInstanceUID', 'RequestedProcedureID',
  'ScheduledProcedureStepID', 'Modality', 'ScheduledStationAETitle',
  'ScheduledProcedureStepStartDate', 'ScheduledProcedureStepStartTime'];
const TAG_TO_KEYWORD = Object.fromEntries(Object.entries(ATTR).map(([k, a]) => [a.tag, k]));

function first(obj, tag) {
  const e = obj && obj[tag.toUpperCase()];
  return e && Array.isArray(e.Value) && e.Value.length ? e.Value[0] : undefined;
}

function spsOf(item) {
  const s = first(item, SPS_SEQUENCE);
  return s && typeof s === 'object' ? s : {};
}

// A keyword's value as text (PN: the DICOM notation with '=' between groups).
function get(item, keyword) {
  const a = ATTR[keyword];
  const v = first(a.sps ? spsOf(item) : item, a.tag);
  if (v === undefined || v === null) return '';
  if (a.vr === 'PN') return typeof v === 'object' ? pnToText(v) : String(v);
  return String(v);
}

function set(target, keyword, text) {
  const a = ATTR[keyword];
  if (text === '') {
    delete target[a.tag];
    return;
  }
  target[a.tag] = { vr: a.vr, Value: [a.vr === 'PN' ? pnFromText(text) : text] };
}

const PN_GROUPS = ['Alphabetic', 'Ideographic', 'Phonetic'];

function pnToText(pn) {
  const groups = PN_GROUPS.map((g) => pn[g] || '');
  while (groups.length > 1 && groups[groups.length - 1] === '') groups.pop();
  return groups.join('=');
}

function pnFromText(text) {
  const out = {};
  text.split('=').forEach((g, i) => {
    if (g !== '' && i < 3) out[PN_GROUPS[i]] = g;
  });
  return out;
}

// One component group for reading: "Family^Given^Middle^Prefix^Suffix" as
// "Family, Given Middle" in Latin script; CJK names have no comma and put
// the family name first with a space, as they are written.
function pnGroupDisplay(group) {
  const c = group.split('^').map((s) => s.trim());
  const [family, given, middle, prefix, suffix] = [c[0] || '', c[1] || '', c[2] || '', c[3] || '', c[4] || ''];
  if (/[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af\uf900-\ufaff]/.test(group)) {
    return [prefix, family, given, middle, suffix].filter(Boolean).join(' ');
  }
  const rest = [prefix, given, middle].filter(Boolean).join(' ');
  const name = family && rest ? family + ', ' + rest : family || rest;
  return suffix ? name + ', ' + suffix : name;
}

function pnElement(pn) {
  const span = el('span', { class: 'pn' });
  if (!pn) return span;
  const obj = typeof pn === 'object' ? pn : pnFromText(String(pn));
  const groups = PN_GROUPS.map((g) => obj[g]).filter(Boolean);
  if (!groups.length) return span;
  span.title = pnToText(obj);
  span.append(el('span', { class: 'pn-main' }, pnGroupDisplay(groups[0])));
  if (groups.length > 1) {
    span.append(el('span', { class: 'pn-alt' }, groups.slice(1).map(pnGroupDisplay).join(' · ')));
  }
  return span;
}

// ---- small helpers -------------------------------------------------------------

function el(name, attrs, ...children) {
  const e = document.createElement(name);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children) if (c !== undefined && c !== null) e.append(c);
  return e;
}

const $ = (id) => document.getElementById(id);

function pad(n, w) {
  return String(n).padStart(w, '0');
}

function isoToday() {
  const d = new Date();
  return `${d.getFullYear()}-${pad(d.getMonth() + 1, 2)}-${pad(d.getDate(), 2)}`;
}

function isoToDA(iso) {
  return iso.replace(/-/g, '');
}

function daToIso(da) {
  return /^\d{8}$/.test(da) ? `${da.slice(0, 4)}-${da.slice(4, 6)}-${da.slice(6, 8)}` : '';
}

function addDays(iso, n) {
  const [y, m, d] = iso.split('-').map(Number);
  const t = new Date(y, m - 1, d + n);
  return `${t.getFullYear()}-${pad(t.getMonth() + 1, 2)}-${pad(t.getDate(), 2)}`;
}

// TM "HHMMSS.FFFFFF" (trailing parts optional) as "HH:MM:SS" or shorter.
function tmDisplay(tm) {
  const m = /^(\d\d)(\d\d)?(\d\d)?/.exec(tm || '');
  if (!m) return tm || '';
  return [m[1], m[2] || '00', m[3]].filter((x) => x !== undefined).join(':');
}

function tmToInput(tm) {
  const m = /^(\d\d)(\d\d)?(\d\d)?/.exec(tm || '');
  return m ? `${m[1]}:${m[2] || '00'}:${m[3] || '00'}` : '';
}

function inputToTM(value) {
  return value.replace(/:/g, '').slice(0, 6);
}

// A new UID under the 2.25 root (PS3.5 B.2): the decimal of a random
// 128-bit number, from the browser's cryptographic generator.
function newUid() {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  let n = 0n;
  for (const b of bytes) n = (n << 8n) | BigInt(b);
  return '2.25.' + n.toString();
}

let toastTimer = null;
function toast(text) {
  const t = $('toast');
  t.textContent = text;
  t.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { t.hidden = true; }, 4000);
}

function banner(text) {
  const b = $('banner');
  b.textContent = text || '';
  b.hidden = !text;
}

// ---- the API, with the token ---------------------------------------------------

const TOKEN_KEY = 'mwl-token';
let tokenPrompt = null; // one prompt at a time, shared by concurrent requests

function askToken() {
  if (tokenPrompt) return tokenPrompt;
  tokenPrompt = new Promise((resolve) => {
    const d = $('token-dialog');
    const input = $('token-input');
    input.value = '';
    const done = (value) => {
      d.removeEventListener('close', onClose);
      tokenPrompt = null;
      if (value) sessionStorage.setItem(TOKEN_KEY, value);
      resolve(value || null);
    };
    const onClose = () => done(d.returnValue === 'use' ? input.value.trim() : '');
    d.addEventListener('close', onClose);
    d.returnValue = '';
    d.showModal();
    input.focus();
  });
  return tokenPrompt;
}

// fetch() with the bearer token. A 401 asks for a token and tries again;
// the answer to give up on is the last 401.
async function api(method, path, body) {
  for (let attempt = 0; ; attempt++) {
    const headers = { Accept: 'application/dicom+json, application/json;q=0.9, text/plain;q=0.5' };
    const token = sessionStorage.getItem(TOKEN_KEY);
    if (token) headers.Authorization = 'Bearer ' + token;
    if (body !== undefined) headers['Content-Type'] = 'application/dicom+json';
    const r = await fetch(path, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: 'no-store',
    });
    if (r.status !== 401 || attempt >= 3) return r;
    sessionStorage.removeItem(TOKEN_KEY);
    if (!(await askToken())) return r;
  }
}

async function errorText(r) {
  let text = '';
  try {
    text = await r.text();
    const j = JSON.parse(text);
    if (j && j.error) return j.error + (j.attribute ? ` (${j.attribute})` : '');
  } catch (e) { /* not JSON: the text itself */ }
  return `${r.status} ${r.statusText}${text ? ': ' + text.slice(0, 200) : ''}`;
}

function itemPath(item) {
  return '/mwlitems/' + encodeURIComponent(get(item, 'StudyInstanceUID')) + '/' +
    encodeURIComponent(get(item, 'ScheduledProcedureStepID'));
}

// ---- the worklist --------------------------------------------------------------

const LIMIT = 500;
const state = { items: [], selected: null };

function readHash() {
  const p = new URLSearchParams(location.hash.slice(1));
  $('date').value = /^\d{4}-\d\d-\d\d$/.test(p.get('date') || '') ? p.get('date') : isoToday();
  $('filter-station').value = p.get('station') || '';
  $('filter-modality').value = p.get('modality') || '';
  $('filter-status').value = p.get('status') || '';
}

function writeHash() {
  const p = new URLSearchParams();
  p.set('date', $('date').value);
  if ($('filter-station').value) p.set('station', $('filter-station').value.trim());
  if ($('filter-modality').value) p.set('modality', $('filter-modality').value);
  if ($('filter-status').value) p.set('status', $('filter-status').value);
  history.replaceState(null, '', '#' + p.toString());
}

function baseQuery() {
  const q = new URLSearchParams();
  const S = 'ScheduledProcedureStepSequence.';
  if (!$('all-dates').checked || !$('search').value.trim()) {
    q.set(S + 'ScheduledProcedureStepStartDate', isoToDA($('date').value || isoToday()));
  }
  const station = $('filter-station').value.trim();
  if (station) q.set(S + 'ScheduledStationAETitle', station);
  if ($('filter-modality').value) q.set(S + 'Modality', $('filter-modality').value);
  if ($('filter-status').value) q.set(S + 'ScheduledProcedureStepStatus', $('filter-status').value);
  q.set('includefield', 'all');
  q.set('limit', String(LIMIT));
  return q;
}

async function fetchItems(q) {
  const r = await api('GET', '/mwlitems?' + q.toString());
  if (!r.ok) throw new Error(r.status === 404 ? 'the worklist API (/mwlitems) is not available on this server'
    : 'worklist: ' + (await errorText(r)));
  const j = await r.json();
  return Array.isArray(j) ? j : [];
}

// Search is over name, ID and accession at once: three queries (C-FIND
// keys are ANDed), merged.
async function loadItems() {
  const text = $('search').value.trim();
  if (!text) return fetchItems(baseQuery());
  const pattern = /[*?]/.test(text) ? text : text + '*';
  const lists = await Promise.all(['PatientName', 'PatientID', 'AccessionNumber'].map((k) => {
    const q = baseQuery();
    q.set(k, pattern);
    return fetchItems(q);
  }));
  const seen = new Map();
  for (const it of lists.flat()) seen.set(itemPath(it), it);
  return [...seen.values()];
}

async function refresh() {
  writeHash();
  try {
    const items = await loadItems();
    banner('');
    items.sort((a, b) => (get(a, 'ScheduledStationAETitle').localeCompare(get(b, 'ScheduledStationAETitle'))) ||
      (get(a, 'ScheduledProcedureStepStartDate') + get(a, 'ScheduledProcedureStepStartTime')).localeCompare(
        get(b, 'ScheduledProcedureStepStartDate') + get(b, 'ScheduledProcedureStepStartTime')));
    state.items = items;
    if (state.selected && !items.some((i) => itemPath(i) === state.selected)) state.selected = null;
    renderItems();
    refreshQueries();
  } catch (e) {
    state.items = [];
    renderItems();
    banner(e.message);
  }
}

function renderItems() {
  const body = $('worklist').tBodies[0];
  body.replaceChildren();
  const search = $('search').value.trim();
  const allDates = search && $('all-dates').checked;
  const heading = allDates ? `Search “${search}”, all dates` : `Worklist of ${$('date').value}` +
    (search ? `, search “${search}”` : '');
  $('worklist-heading').textContent = heading;
  const stations = new Set();
  let station = null;
  for (const it of state.items) {
    const ae = get(it, 'ScheduledStationAETitle');
    stations.add(ae);
    if (ae !== station) {
      station = ae;
      const n = state.items.filter((x) => get(x, 'ScheduledStationAETitle') === ae).length;
      const mods = [...new Set(state.items.filter((x) => get(x, 'ScheduledStationAETitle') === ae)
        .map((x) => get(x, 'Modality')))].join(', ');
      body.append(el('tr', { class: 'station' }, el('th', { colspan: '9' }, `${ae || '(no station)'} — ${mods} — ${n}`)));
    }
    body.append(itemRow(it));
  }
  const list = $('stations');
  const known = new Set([...list.options].map((o) => o.value));
  for (const ae of stations) if (ae && !known.has(ae)) list.append(el('option', {}, ae));
  $('list-note').textContent = state.items.length === 0 ? 'No scheduled procedure steps.'
    : `${state.items.length} scheduled procedure step(s)` + (state.items.length >= LIMIT ? ` (the first ${LIMIT})` : '') + '.';
}

function itemRow(it) {
  const status = get(it, 'ScheduledProcedureStepStatus');
  const path = itemPath(it);
  const inactive = ['COMPLETED', 'DISCONTINUED', 'CANCELED'].includes(status);
  const date = get(it, 'ScheduledProcedureStepStartDate');
  const showDate = $('all-dates').checked && $('search').value.trim();
  const tr = el('tr', {
    class: [state.selected === path ? 'selected' : '', inactive ? 'inactive' : ''].join(' ').trim() || undefined,
    'data-sps': get(it, 'ScheduledProcedureStepID'), 'data-study': get(it, 'StudyInstanceUID'),
  },
  el('td', { class: 'mono' }, (showDate ? daToIso(date) + ' ' : '') + tmDisplay(get(it, 'ScheduledProcedureStepStartTime'))),
  el('td', { class: 'mono' }, get(it, 'ScheduledStationAETitle')),
  el('td', {}, get(it, 'Modality')),
  el('td', {}, pnElement(first(it, ATTR.PatientName.tag))),
  el('td', { class: 'mono' }, get(it, 'PatientID')),
  el('td', { class: 'mono' }, get(it, 'AccessionNumber')),
  el('td', {}, get(it, 'ScheduledProcedureStepDescription') || get(it, 'RequestedProcedureDescription'),
    el('div', { class: 'note mono' }, 'SPS ' + get(it, 'ScheduledProcedureStepID'))),
  el('td', {}, status ? el('span', { class: 'status ' + status }, status) : ''),
  el('td', { class: 'actions' },
    el('button', { type: 'button', title: 'Select for explain', class: 'select', onclick: () => select(path) }, '⊙'),
    el('button', { type: 'button', class: 'edit', onclick: () => editItem(it) }, 'Edit'),
    inactive ? null : el('button', { type: 'button', class: 'cancel', onclick: () => cancelItem(it) }, 'Cancel')));
  return tr;
}

function select(path) {
  state.selected = state.selected === path ? null : path;
  renderItems();
  const it = state.items.find((i) => itemPath(i) === state.selected);
  $('explain-target').textContent = it
    ? `Explain against SPS ${get(it, 'ScheduledProcedureStepID')} (${pnGroupDisplay(get(it, 'PatientName').split('=')[0])}).`
    : 'Select a row (⊙) to explain a query against it.';
  renderQueries();
}

async function cancelItem(it) {
  const who = pnGroupDisplay(get(it, 'PatientName').split('=')[0]);
  if (!confirm(`Cancel SPS ${get(it, 'ScheduledProcedureStepID')} of ${who}?`)) return;
  const r = await api('POST', itemPath(it) + '/status/CANCELED');
  if (!r.ok) {
    banner('Cancel: ' + (await errorText(r)));
    return;
  }
  toast(`SPS ${get(it, 'ScheduledProcedureStepID')} canceled`);
  await refresh();
}

// ---- the form ------------------------------------------------------------------

const FORM_KEYS = ['PatientName', 'PatientID', 'PatientBirthDate', 'PatientSex', 'AccessionNumber',
  'StudyInstanceUID', 'RequestedProcedureID', 'RequestedProcedureDescription', 'ScheduledProcedureStepID',
  'Modality', 'ScheduledStationAETitle', 'ScheduledProcedureStepStartDate', 'ScheduledProcedureStepStartTime',
  'ScheduledProcedureStepDescription'];
let editing = null; // the item being edited (as the server gave it), or null for a new one

function field(keyword) {
  return $('f-' + keyword);
}

function formValue(keyword) {
  const input = field(keyword);
  const v = input.value.trim();
  const vr = ATTR[keyword].vr;
  if (vr === 'DA') return isoToDA(v);
  if (vr === 'TM') return inputToTM(v);
  if (vr === 'CS' || vr === 'AE') return keyword === 'ScheduledStationAETitle' ? v : v.toUpperCase();
  return v;
}

function setFieldError(keyword, message) {
  const input = field(keyword);
  if (!input) return false;
  input.classList.toggle('invalid', Boolean(message));
  input.setAttribute('aria-invalid', message ? 'true' : 'false');
  input.parentElement.querySelector('.field-error').textContent = message || '';
  return true;
}

function clearErrors() {
  FORM_KEYS.forEach((k) => setFieldError(k, ''));
  $('form-error').textContent = '';
}

// What import would refuse, said next to the field: a type 1 key without a
// value, more than one value where one is allowed (a backslash), text that
// is longer than its VR allows, a date or time that is not one.
function validate() {
  const problems = {};
  for (const k of FORM_KEYS) {
    const a = ATTR[k];
    const v = formValue(k);
    if (v === '') {
      if (REQUIRED.includes(k) && !(k === 'StudyInstanceUID' && !editing)) problems[k] = 'required';
      continue;
    }
    if (v.includes('\\')) problems[k] = 'one value only (no backslash)';
    else if (/[\u0000-\u001f]/.test(v)) problems[k] = 'no control characters';
    else if (a.vr === 'PN') {
      const groups = v.split('=');
      if (groups.length > 3) problems[k] = 'at most three groups (alphabetic=ideographic=phonetic)';
      else if (groups.some((g) => g.split('^').length > 5)) problems[k] = 'at most five components per group';
      else if (groups.some((g) => g.length > 64)) problems[k] = 'at most 64 characters per group';
    } else if (a.max && [...v].length > a.max) problems[k] = `at most ${a.max} characters`;
    else if (a.vr === 'UI' && !/^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))+$/.test(v)) problems[k] = 'not a UID (digits and dots)';
    else if (a.vr === 'DA' && !/^\d{8}$/.test(v)) problems[k] = 'not a date';
    else if (a.vr === 'TM' && !/^([01]\d|2[0-3])([0-5]\d)([0-5]\d)?$/.test(v)) problems[k] = 'not a time';
    else if (a.vr === 'AE' && /^ *$/.test(v)) problems[k] = 'required';
    else if (a.vr === 'CS' && !/^[A-Z0-9 _]*$/.test(v)) problems[k] = 'capitals, digits, space and _ only';
  }
  return problems;
}

function openForm(item) {
  editing = item || null;
  clearErrors();
  $('item-title').textContent = item ? `Edit SPS ${get(item, 'ScheduledProcedureStepID')}` : 'New worklist item';
  for (const k of FORM_KEYS) {
    const input = field(k);
    const v = item ? get(item, k) : '';
    if (ATTR[k].vr === 'DA') input.value = daToIso(v);
    else if (ATTR[k].vr === 'TM') input.value = tmToInput(v);
    else input.value = v;
  }
  // The item's address is its Study Instance UID and SPS ID: they are not
  // edited in place (a new item is).
  field('StudyInstanceUID').readOnly = Boolean(item);
  field('ScheduledProcedureStepID').readOnly = Boolean(item);
  if (!item) {
    field('ScheduledProcedureStepStartDate').value = $('date').value;
    field('ScheduledStationAETitle').value = $('filter-station').value.trim();
    field('Modality').value = $('filter-modality').value;
  }
  $('item-dialog').showModal();
  field('PatientName').focus();
}

async function editItem(it) {
  const r = await api('GET', itemPath(it));
  if (!r.ok) {
    banner('Edit: ' + (await errorText(r)));
    return;
  }
  const j = await r.json();
  openForm(Array.isArray(j) ? j[0] : j);
}

function buildItem() {
  // Editing keeps every attribute the form does not show.
  const item = editing ? JSON.parse(JSON.stringify(editing)) : {};
  let sps = editing ? spsOf(item) : {};
  if (!editing) {
    sps[ATTR.ScheduledProcedureStepStatus.tag] = { vr: 'CS', Value: ['SCHEDULED'] };
  }
  if (!item[SPS_SEQUENCE] || !Array.isArray(item[SPS_SEQUENCE].Value) || !item[SPS_SEQUENCE].Value.length) {
    item[SPS_SEQUENCE] = { vr: 'SQ', Value: [sps] };
  }
  sps = item[SPS_SEQUENCE].Value[0];
  for (const k of FORM_KEYS) set(ATTR[k].sps ? sps : item, k, formValue(k));
  return item;
}

// The field a server error names: `attribute` as a keyword, a path
// (Sequence.Keyword), a tag (00100010 or (0010,0010)); else the first of
// those found in the message.
function fieldOfError(attribute, message) {
  const candidates = [];
  if (attribute) candidates.push(String(attribute));
  if (message) candidates.push(...String(message).split(/[\s:;,'"`]+/));
  for (const c of candidates) {
    const kw = c.split('.').pop();
    if (FORM_KEYS.includes(kw)) return kw;
    const hex = c.replace(/[(),]/g, '').toUpperCase();
    if (/^[0-9A-F]{8}$/.test(hex) && FORM_KEYS.includes(TAG_TO_KEYWORD[hex])) return TAG_TO_KEYWORD[hex];
  }
  const tags = /\(([0-9A-Fa-f]{4}),([0-9A-Fa-f]{4})\)/.exec(message || '');
  if (tags) {
    const kw = TAG_TO_KEYWORD[(tags[1] + tags[2]).toUpperCase()];
    if (FORM_KEYS.includes(kw)) return kw;
  }
  return null;
}

async function saveForm() {
  clearErrors();
  const problems = validate();
  const keys = Object.keys(problems);
  if (keys.length) {
    keys.forEach((k) => setFieldError(k, problems[k]));
    $('form-error').textContent = `${keys.length} field(s) to correct.`;
    field(keys[0]).focus();
    return;
  }
  if (!editing && !field('StudyInstanceUID').value.trim()) field('StudyInstanceUID').value = newUid();
  const item = buildItem();
  const r = editing ? await api('PUT', itemPath(editing), item) : await api('POST', '/mwlitems', item);
  if (!r.ok) {
    let error = '', attribute = '';
    const text = await r.text();
    try {
      const j = JSON.parse(text);
      error = j.error || text;
      attribute = j.attribute || '';
    } catch (e) {
      error = `${r.status} ${r.statusText} ${text.slice(0, 200)}`;
    }
    const k = fieldOfError(attribute, error);
    if (k) setFieldError(k, error);
    $('form-error').textContent = `The server refused the item (${r.status}): ${error}`;
    return;
  }
  $('item-dialog').close();
  toast(`SPS ${get(item, 'ScheduledProcedureStepID')} ${editing ? 'saved' : 'created'}`);
  const date = daToIso(get(item, 'ScheduledProcedureStepStartDate'));
  if (date && !($('search').value.trim() && $('all-dates').checked)) $('date').value = date;
  editing = null;
  await refresh();
}

// ---- recent queries and explain (present when the server has them) ------------

const queries = { available: true, byAe: new Map(), extraAe: '' };

async function refreshQueries() {
  if (!queries.available) return;
  const aes = [...new Set(state.items.map((i) => get(i, 'ScheduledStationAETitle')).filter(Boolean))].slice(0, 8);
  if (queries.extraAe && !aes.includes(queries.extraAe)) aes.unshift(queries.extraAe);
  const next = new Map();
  for (const ae of aes) {
    let r;
    try {
      r = await api('GET', `/queries?calling=${encodeURIComponent(ae)}&limit=5`);
    } catch (e) {
      continue;
    }
    if (r.status === 404) {
      // The server has no query log: the panel goes away.
      queries.available = false;
      $('queries-panel').hidden = true;
      return;
    }
    if (!r.ok) continue;
    const j = await r.json().catch(() => []);
    next.set(ae, Array.isArray(j) ? j : (j.queries || j.items || []));
  }
  queries.byAe = next;
  $('queries-panel').hidden = false;
  renderQueries();
}

// The keys of a logged query, whatever shape: a DICOM JSON identifier, a
// keyword map, or a list.
function keysText(keys) {
  if (!keys) return '';
  if (typeof keys === 'string') return keys;
  if (Array.isArray(keys)) return keys.map(keysText).join(' ');
  return Object.entries(keys).map(([k, v]) => {
    let value = v;
    if (v && typeof v === 'object' && 'vr' in v) {
      if (v.vr === 'SQ') value = '(' + (v.Value || []).map(keysText).join(' ') + ')';
      else value = (v.Value || []).map((x) => (x && typeof x === 'object' ? pnToText(x) : x)).join('\\');
    } else if (v && typeof v === 'object') value = keysText(v);
    const name = TAG_TO_KEYWORD[k.toUpperCase()] || k;
    return `${name}=${value === '' || value === undefined ? '∅' : value}`;
  }).join(' ');
}

function renderQueries() {
  const box = $('queries-list');
  box.replaceChildren();
  box.className = 'queries';
  const target = state.items.find((i) => itemPath(i) === state.selected);
  for (const [ae, list] of queries.byAe) {
    box.append(el('h3', {}, ae));
    if (!list.length) {
      box.append(el('p', { class: 'note' }, 'No query from this AE title yet.'));
      continue;
    }
    const ul = el('ul');
    for (const q of list) {
      // GET /queries: {id, time, callingAet, keys (a summary), matches,
      // status, statusText, durationMs, identifier (DICOM JSON)}.
      const status = q.statusText || (q.status === undefined ? '' : String(q.status));
      const keys = q.keys ? keysText(q.keys) : keysText(q.identifier);
      ul.append(el('li', {},
        el('span', { class: 'mono' }, String(q.time || '').replace('T', ' ').replace(/\.\d+Z?$/, '')),
        ` — ${q.matches ?? '?'} match(es)` + (status ? `, ${status}` : '') +
          (q.durationMs !== undefined ? `, ${q.durationMs} ms` : ''),
        el('span', { class: 'keys mono' }, keys),
        el('button', {
          type: 'button', class: 'explain', disabled: !target || q.id === undefined,
          title: target ? 'Why does this query match the selected item or not?' : 'Select a row first',
          onclick: () => explain(q, target),
        }, 'Explain')));
    }
    box.append(ul);
  }
}

// A keyword path with line-break opportunities between its words
// ("Scheduled|Station|AE|Title"), so that a narrow column wraps at words
// rather than between any two letters.
function breakable(text) {
  return text.split(/(?<=[a-z])(?=[A-Z])|(?<=>)/).flatMap((part, i) => (i ? [el('wbr', {}), part] : [part]));
}

// GET /explain?query=ID&study_uid=…&sps_id=…: the logged query against
// the chosen stored item, key by key ({matched, steps: [{spsId, matched,
// failing, keys: [{path, query, value, result, reason, hint}]}]}).
async function explain(q, target) {
  const out = $('explain-result');
  out.hidden = false;
  out.replaceChildren(el('p', { class: 'note' }, 'Explaining…'));
  const p = new URLSearchParams({
    query: String(q.id), study_uid: get(target, 'StudyInstanceUID'), sps_id: get(target, 'ScheduledProcedureStepID'),
  });
  const r = await api('GET', '/explain?' + p.toString());
  if (!r.ok) {
    const text = await errorText(r);
    out.replaceChildren(el('p', { class: 'error' }, r.status === 404 && /^not found/.test(text)
      ? 'This server cannot explain queries (/explain not found).' : 'Explain: ' + text));
    return;
  }
  const j = await r.json();
  const steps = Array.isArray(j.steps) ? j.steps : [j];
  out.replaceChildren(el('h3', {}, `Query ${q.id} from ${q.callingAet || '?'}`));
  for (const st of steps) {
    // Keys that only ask for a value back ("n/a") say nothing about the
    // match: counted, not listed, so the panel stays readable.
    const keys = (st.keys || []).filter((k) => k.result !== 'n/a');
    const hidden = (st.keys || []).length - keys.length;
    out.append(
      el('p', {}, `SPS ${st.spsId || get(target, 'ScheduledProcedureStepID')}: `,
        el('span', { class: st.matched ? 'match' : 'nomatch' }, st.matched ? 'match' : 'no match'),
        st.failing && st.failing.length ? ` — failing: ${st.failing.join(', ')}` : ''),
      el('table', {},
        el('thead', {}, el('tr', {}, el('th', {}, 'Key'), el('th', {}, 'Query → item'), el('th', {}, 'Result'))),
        el('tbody', {}, ...keys.map((k) => el('tr', {},
          el('td', { title: k.path || '' },
            ...breakable((k.path || k.name || '').replace(/^ScheduledProcedureStepSequence>/, 'SPS › '))),
          el('td', { class: 'mono' }, `${k.query ?? ''} → ${k.value ?? ''}`),
          el('td', {},
            el('span', { class: k.result === 'no match' ? 'nomatch' : k.result === 'match' ? 'match' : undefined },
              k.result || ''),
            k.reason || k.hint ? el('div', { class: 'why' }, (k.reason || '') + (k.hint ? ' — ' + k.hint : ''))
              : ''))))),
      hidden ? el('p', { class: 'note' }, `${hidden} return-only key(s) not listed.`) : '');
  }
}

// ---- server status (/metrics) --------------------------------------------------

// Prometheus text format 0.0.4: "name{labels} value" lines, as samples
// {name, labels, value}.
function parseMetrics(text) {
  const out = [];
  for (const line of text.split('\n')) {
    const r = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{([^}]*)\})? (\S+)/.exec(line);
    if (!r) continue;
    const labels = {};
    for (const l of (r[2] || '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2];
    out.push({ name: r[1], labels, value: Number(r[3]) });
  }
  return out;
}

// The sum of a metric's samples whose labels include `want` (a counter
// split by labels, such as C-FINDs by status and calling AE, adds up);
// undefined when the server has no such metric.
function total(samples, name, want) {
  let sum;
  for (const s of samples) {
    if (s.name !== name) continue;
    if (want && Object.entries(want).some(([k, v]) => s.labels[k] !== v)) continue;
    sum = (sum || 0) + s.value;
  }
  return sum;
}

const SHOWN = [
  ['mwl_associations_active', null, 'Associations open'],
  ['mwl_associations_total', null, 'Associations'],
  ['mwl_cfind_total', null, 'C-FINDs'],
  ['mwl_cfind_matches_total', null, 'C-FIND matches'],
  ['mwl_echo_total', null, 'C-ECHOs'],
  ['mwl_items_stored', null, 'Items stored'],
  ['mwl_associations_rejected_total', null, 'Associations rejected', true],
  ['mwl_associations_aborted_total', null, 'Associations aborted', true],
  ['mwl_hl7_messages_total', { ack: 'AA' }, 'HL7 messages accepted'],
  ['mwl_hl7_messages_total', { ack: 'AE' }, 'HL7 errors (AE)', true],
  ['mwl_hl7_messages_total', { ack: 'AR' }, 'HL7 rejects (AR)', true],
];

// "2026-12-04T23:20:12.345Z ORM^O01 CLS00001 from RIS|HOSP" for an HL7
// event of /status (its strings are the sender's: only ever set as text).
function hl7EventText(ev) {
  const when = new Date(ev.time);
  const at = isNaN(when) ? ev.time : when.toLocaleString();
  return `${at} ${ev.type || '(no MSH)'} ${ev.control_id}` + (ev.sender ? ` from ${ev.sender}` : '');
}

// The HL7 feed's last message and last error (GET /status); the line is
// hidden when the server runs no HL7 feed or does not answer.
async function refreshHl7() {
  const line = $('status-hl7');
  let st;
  try {
    const r = await api('GET', '/status');
    st = r.ok ? await r.json() : null;
  } catch (e) {
    st = null;
  }
  if (!st || !st.hl7) {
    line.hidden = true;
    return;
  }
  const last = st.hl7.last_message, err = st.hl7.last_error;
  const parts = [
    last ? `last message ${hl7EventText(last)} (${last.ack})` : 'no message yet',
    err ? `last error ${hl7EventText(err)} (${err.ack}: ${err.error})` : 'no error',
  ];
  line.textContent = 'HL7 feed: ' + parts.join(', ');
  // Red while the newest message is the one refused.
  line.classList.toggle('bad', !!last && last.ack !== 'AA');
  line.hidden = false;
}

async function refreshStatus() {
  let r;
  try {
    r = await api('GET', '/metrics');
  } catch (e) {
    $('status-note').textContent = 'The server does not answer.';
    $('status-summary').textContent = 'server unreachable';
    return;
  }
  if (!r.ok) {
    $('status-note').textContent = 'Metrics: ' + (await errorText(r));
    return;
  }
  const m = parseMetrics(await r.text());
  const dl = $('status-list');
  dl.replaceChildren();
  for (const [name, want, label, bad] of SHOWN) {
    const v = total(m, name, want);
    if (v === undefined) continue;
    dl.append(el('dt', {}, label), el('dd', { class: bad && v > 0 ? 'bad' : undefined }, String(v)));
  }
  await refreshHl7();
  $('status-note').textContent = 'Updated ' + new Date().toLocaleTimeString() + '.';
  $('status-summary').textContent = `${total(m, 'mwl_associations_active') ?? 0} association(s) open · ` +
    `${total(m, 'mwl_cfind_total') ?? 0} C-FIND(s)`;
}

// ---- wiring --------------------------------------------------------------------

function init() {
  readHash();
  $('filters').addEventListener('submit', (e) => { e.preventDefault(); refresh(); });
  $('prev-day').addEventListener('click', () => { $('date').value = addDays($('date').value || isoToday(), -1); refresh(); });
  $('next-day').addEventListener('click', () => { $('date').value = addDays($('date').value || isoToday(), 1); refresh(); });
  $('today').addEventListener('click', () => { $('date').value = isoToday(); refresh(); });
  for (const id of ['date', 'filter-station', 'filter-modality', 'filter-status', 'all-dates']) {
    $(id).addEventListener('change', refresh);
  }
  $('new-item').addEventListener('click', () => openForm(null));
  $('item-cancel').addEventListener('click', () => { $('item-dialog').close(); editing = null; });
  $('item-form').addEventListener('submit', (e) => { e.preventDefault(); saveForm(); });
  $('token-button').addEventListener('click', () => { askToken().then(() => { refresh(); refreshStatus(); }); });
  $('token-form').addEventListener('submit', (e) => { e.preventDefault(); $('token-dialog').close('use'); });
  $('token-forget').addEventListener('click', () => { sessionStorage.removeItem(TOKEN_KEY); $('token-dialog').close(''); });
  $('queries-form').addEventListener('submit', (e) => {
    e.preventDefault();
    queries.extraAe = $('queries-ae').value.trim();
    refreshQueries();
  });
  refresh();
  refreshStatus();
  setInterval(refreshStatus, 10000);
}

document.addEventListener('DOMContentLoaded', init);
