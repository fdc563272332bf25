// SPDX-License-Identifier: MIT
// The dpsd portal: one page that signs service API requests with SAS tokens
// computed here (WebCrypto HMAC-SHA256) and renders enrollments, registration
// records and CA certificates. The key stays in sessionStorage and never
// leaves the browser; only tokens derived from it are sent. No framework, no
// innerHTML: every text from the server goes through textContent.
'use strict';

const API_VERSION = '2021-10-01';
const SESSION_KEY = 'dpsd.portal.credentials';
const TOKEN_TTL = 3600;
const PAGE_SIZES = [10, 20, 50, 100];

// ---------------------------------------------------------------- helpers

// Builds an element: h('a', {href: '#'}, 'text', child, ...). Attribute values
// are set with setAttribute (or as properties for on* handlers and booleans).
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

function $(id) {
  return document.getElementById(id);
}

function fmtDate(s) {
  if (!s) return '—';
  const d = new Date(s);
  if (Number.isNaN(d.getTime())) return s;
  return d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z').replace(/Z$/, ' UTC');
}

function b64ToBytes(b64) {
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

function bytesToB64(bytes) {
  let bin = '';
  for (const b of new Uint8Array(bytes)) bin += String.fromCharCode(b);
  return btoa(bin);
}

function hex(bytes) {
  return Array.from(new Uint8Array(bytes), (b) => b.toString(16).padStart(2, '0')).join('').toUpperCase();
}

function toast(text) {
  const t = $('toast');
  t.textContent = text;
  t.classList.add('show');
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => t.classList.remove('show'), 5000);
}

function errorBox(err) {
  return h('div', { class: 'error', role: 'alert' }, err instanceof ApiError ? err.describe() : String(err.message || err));
}

function notAvailable(what) {
  return h('p', { class: 'note', role: 'note' }, `${what} is not available on this server.`);
}

// A key/value list: rows of [label, value-or-node].
function dl(rows) {
  return h('dl', { class: 'props' }, rows.filter(Boolean).map(([k, v]) => [h('dt', {}, k), h('dd', {}, v === undefined || v === null || v === '' ? '—' : v)]));
}

function json(obj) {
  return h('pre', { class: 'json' }, JSON.stringify(obj, null, 2));
}

// ---------------------------------------------------------------- credentials and SAS

// Parses "HostName=...;SharedAccessKeyName=...;SharedAccessKey=..." (split on ';', then on the first '=').
function parseConnectionString(s) {
  const fields = {};
  for (const part of s.trim().split(';')) {
    if (!part) continue;
    const eq = part.indexOf('=');
    if (eq < 0) throw new Error(`connection string part '${part}' has no '='`);
    fields[part.slice(0, eq).trim()] = part.slice(eq + 1).trim();
  }
  for (const need of ['HostName', 'SharedAccessKeyName', 'SharedAccessKey']) {
    if (!fields[need]) throw new Error(`the connection string has no '${need}'`);
  }
  return { host: fields.HostName, policy: fields.SharedAccessKeyName, key: fields.SharedAccessKey };
}

function checkCredentials(c) {
  if (!c.host) throw new Error('the host name is empty');
  if (!c.policy) throw new Error('the policy name is empty');
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(c.key) || c.key.length % 4 !== 0) {
    throw new Error('the key is not valid base64');
  }
}

const session = {
  get() {
    try {
      return JSON.parse(sessionStorage.getItem(SESSION_KEY));
    } catch {
      return null;
    }
  },
  set(c) {
    sessionStorage.setItem(SESSION_KEY, JSON.stringify(c));
  },
  clear() {
    sessionStorage.removeItem(SESSION_KEY);
  },
};

// SharedAccessSignature sr=HOST&sig=URLENC(BASE64(HMAC-SHA256(key, HOST + "\n" + se)))&se=..&skn=..
async function sasToken(c) {
  const se = Math.floor(Date.now() / 1000) + TOKEN_TTL;
  const key = await crypto.subtle.importKey('raw', b64ToBytes(c.key), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  const mac = await crypto.subtle.sign('HMAC', key, new TextEncoder().encode(`${c.host}\n${se}`));
  return `SharedAccessSignature sr=${encodeURIComponent(c.host)}&sig=${encodeURIComponent(bytesToB64(mac))}` +
    `&se=${se}&skn=${encodeURIComponent(c.policy)}`;
}

// ---------------------------------------------------------------- service API

class ApiError extends Error {
  constructor(status, body, path) {
    const msg = (body && (body.message || body.Message)) || `HTTP ${status}`;
    super(msg);
    this.status = status;
    this.body = body;
    this.path = path;
  }

  describe() {
    const code = this.body && this.body.errorCode ? ` (error ${this.body.errorCode})` : '';
    const tid = this.body && this.body.trackingId ? `; tracking id ${this.body.trackingId}` : '';
    if (this.status === 401) return `The server refused the credentials: ${this.message}${code}${tid}`;
    if (this.status === 403) return `The policy lacks a right for this: ${this.message}${code}${tid}`;
    return `${this.message}${code}${tid}`;
  }
}

// Calls the service API. Returns {status, headers, body}; throws ApiError for status >= 300.
async function api(method, path, opts = {}) {
  const c = session.get();
  if (!c) throw new Error('not signed in');
  const headers = { accept: 'application/json', authorization: await sasToken(c), ...(opts.headers || {}) };
  let body;
  if (opts.body !== undefined) {
    headers['content-type'] = 'application/json; charset=utf-8';
    body = JSON.stringify(opts.body);
  }
  const sep = path.includes('?') ? '&' : '?';
  const res = await fetch(`${path}${sep}api-version=${API_VERSION}`, {
    method, headers, body, credentials: 'omit', cache: 'no-store', redirect: 'error',
  });
  const text = await res.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = { message: text.slice(0, 500) };
    }
  }
  if (res.status >= 300) throw new ApiError(res.status, data, path);
  return { status: res.status, headers: res.headers, body: data };
}

const enc = encodeURIComponent;

// One page of a query: {items, continuation}.
async function queryPage(path, pageSize, continuation, query) {
  const headers = { 'x-ms-max-item-count': String(pageSize) };
  if (continuation) headers['x-ms-continuation'] = continuation;
  const r = await api('POST', path, { headers, body: { query: query || '*' } });
  return { items: Array.isArray(r.body) ? r.body : [], continuation: r.headers.get('x-ms-continuation') || null };
}

// Counts the items of a query, reading at most maxPages pages: {count, more}.
async function countAll(path, maxPages = 20) {
  let count = 0;
  let cont = null;
  for (let i = 0; i < maxPages; i++) {
    const page = await queryPage(path, 100, cont);
    count += page.items.length;
    cont = page.continuation;
    if (!cont) return { count, more: false };
  }
  return { count, more: true };
}

// ---------------------------------------------------------------- certificates in the browser

// Returns the DER bytes of a PEM text, base64 PEM, or base64 DER; throws when none fits.
function certDer(text) {
  const t = text.trim();
  const m = /-----BEGIN CERTIFICATE-----([\s\S]*?)-----END CERTIFICATE-----/.exec(t);
  if (m) return b64ToBytes(m[1].replace(/\s+/g, ''));
  const raw = b64ToBytes(t.replace(/\s+/g, ''));
  const asText = new TextDecoder().decode(raw.slice(0, 11));
  if (asText === '-----BEGIN ') return certDer(new TextDecoder().decode(raw));
  if (raw[0] !== 0x30) throw new Error('this is not a certificate (PEM, base64 PEM or base64 DER)');
  return raw;
}

async function thumbprints(text) {
  const der = certDer(text);
  return {
    sha1: hex(await crypto.subtle.digest('SHA-1', der)),
    sha256: hex(await crypto.subtle.digest('SHA-256', der)),
  };
}

// The dl rows of a server-computed X509CertificateInfo.
function certInfoRows(info) {
  if (!info) return [['Certificate', 'no information returned']];
  return [
    ['Subject', info.subjectName],
    ['Issuer', info.issuerName],
    ['Valid from', fmtDate(info.notBeforeUtc)],
    ['Valid until', fmtDate(info.notAfterUtc)],
    ['Serial number', h('code', {}, info.serialNumber || '')],
    ['SHA-1 thumbprint', h('code', { class: 'thumb', 'data-field': 'sha1' }, info.sha1Thumbprint || '')],
    ['SHA-256 thumbprint', h('code', { class: 'thumb', 'data-field': 'sha256' }, info.sha256Thumbprint || '')],
    ['Version', info.version],
  ];
}

// ---------------------------------------------------------------- confirmation dialog

function confirmDialog(title, text, okLabel = 'Delete') {
  const d = $('confirm');
  $('confirm-title').textContent = title;
  $('confirm-text').textContent = text;
  $('confirm-ok').textContent = okLabel;
  return new Promise((resolve) => {
    d.addEventListener('close', () => resolve(d.returnValue === 'ok'), { once: true });
    d.returnValue = '';
    d.showModal();
    $('confirm-cancel').focus();
  });
}

// ---------------------------------------------------------------- enrollment kinds

const KINDS = {
  groups: {
    tab: 'Enrollment groups',
    one: 'enrollment group',
    base: '/enrollmentGroups',
    idField: 'enrollmentGroupId',
    idLabel: 'Group id',
    x509: 'signingCertificates',
    x509Label: 'X.509 CA certificate (root or intermediate)',
  },
  individual: {
    tab: 'Individual enrollments',
    one: 'individual enrollment',
    base: '/enrollments',
    idField: 'registrationId',
    idLabel: 'Registration id',
    x509: 'clientCertificates',
    x509Label: 'X.509 device certificate',
  },
};

function attestationType(e) {
  const a = e.attestation || {};
  if (a.type === 'x509') {
    if (a.x509 && a.x509.caReferences) return 'X.509 (CA reference)';
    return 'X.509';
  }
  if (a.type === 'symmetricKey') return 'Symmetric key';
  if (a.type === 'tpm') return 'TPM';
  return a.type || '—';
}

function statusBadge(s) {
  const v = s || 'enabled';
  return h('span', { class: `badge ${v}` }, v);
}

// ---------------------------------------------------------------- views

const views = {};

function setTitle(text) {
  document.title = `${text} · dpsd portal`;
}

function tabs(active) {
  return h('div', { class: 'tabs', role: 'tablist', 'aria-label': 'Enrollment kind' },
    Object.entries(KINDS).map(([k, kind]) => h('a', {
      role: 'tab', href: `#/enrollments/${k}`, id: `tab-${k}`,
      'aria-selected': k === active ? 'true' : 'false', class: k === active ? 'active' : '',
    }, kind.tab)));
}

views.signin = (main, note) => {
  setTitle('Sign in');
  const err = h('div', { id: 'signin-error', class: 'error', role: 'alert', hidden: !note }, note || '');
  const cs = h('textarea', { id: 'connection-string', rows: 3, autocomplete: 'off', spellcheck: 'false',
    placeholder: 'HostName=…;SharedAccessKeyName=provisioningserviceowner;SharedAccessKey=…' });
  const policy = h('input', { id: 'policy-name', autocomplete: 'off', value: 'provisioningserviceowner' });
  const key = h('input', { id: 'policy-key', type: 'password', autocomplete: 'off' });
  const submit = h('button', { type: 'submit', id: 'sign-in' }, 'Sign in');
  const form = h('form', { class: 'card signin', onsubmit: async (ev) => {
    ev.preventDefault();
    err.hidden = true;
    let c;
    try {
      c = cs.value.trim() ? parseConnectionString(cs.value)
        : { host: location.hostname, policy: policy.value.trim(), key: key.value.trim() };
      checkCredentials(c);
    } catch (e) {
      err.textContent = `Cannot sign in: ${e.message}.`;
      err.hidden = false;
      return;
    }
    submit.disabled = true;
    session.set(c);
    try {
      await queryPage(`${KINDS.groups.base}/query`, 1, null);
      cs.value = '';
      key.value = '';
      go('#/overview');
    } catch (e) {
      session.clear();
      if (e instanceof ApiError && (e.status === 401 || e.status === 403)) {
        err.textContent = `Wrong key or policy: the server refused the signature of policy '${c.policy}' for host '${c.host}'. ` +
          `Check the connection string (${e.message}).`;
      } else if (e instanceof ApiError && e.status === 404) {
        err.textContent = 'This server does not serve the service API, so the portal cannot sign in.';
      } else {
        err.textContent = `Cannot sign in: ${e instanceof ApiError ? e.describe() : e.message}`;
      }
      err.hidden = false;
    } finally {
      submit.disabled = false;
    }
  } },
  h('h1', {}, 'Sign in'),
  h('p', {}, 'Paste the service connection string that dpsd printed at its first start (also in ',
    h('code', {}, 'DATA_DIR/connection-string'), '). The key stays in this browser tab; only signatures made from it are sent.'),
  err,
  h('label', { for: 'connection-string' }, 'Service connection string'), cs,
  h('details', {}, h('summary', {}, 'Use a policy name and key instead'),
    h('label', { for: 'policy-name' }, 'Policy name'), policy,
    h('label', { for: 'policy-key' }, 'Key (base64)'), key),
  h('div', { class: 'actions' }, submit));
  main.append(form);
  cs.focus();
};

views.overview = async (main) => {
  setTitle('Overview');
  main.append(h('h1', {}, 'Overview'));
  const c = session.get();
  const info = h('section', { class: 'card', 'aria-labelledby': 'ov-service' }, h('h2', { id: 'ov-service' }, 'Service'));
  const counts = h('section', { class: 'card', 'aria-labelledby': 'ov-counts' }, h('h2', { id: 'ov-counts' }, 'Counts'));
  const failed = h('section', { class: 'card wide', 'aria-labelledby': 'ov-failed' }, h('h2', { id: 'ov-failed' }, 'Recent failed attempts'));
  main.append(h('div', { class: 'grid' }, info, counts, failed));
  const failures = recentFailures(failed);

  try {
    const r = await api('GET', '/service/info');
    const s = r.body || {};
    const hubs = s.linkedHubs || [];
    info.append(dl([
      ['ID scope', h('code', { id: 'id-scope' }, s.idScope || '')],
      ['Service endpoint', h('code', {}, s.serviceEndpoint || `https://${c.host}`)],
      ['Device endpoint', h('code', {}, s.deviceEndpoint || `https://${c.host}`)],
      s.mqttEndpoint && ['MQTT endpoint', h('code', {}, s.mqttEndpoint)],
      ['Signed in as', c.policy],
      ['Version', s.version],
    ]), h('h3', {}, 'Linked IoT hubs'),
    hubs.length ? h('ul', { class: 'hubs' }, hubs.map((hub) => h('li', {}, h('code', {}, hub.host || hub),
      hub.weight ? ` weight ${hub.weight}` : '', hub.location ? `, ${hub.location}` : '')))
      : h('p', { class: 'muted' }, 'No linked hubs configured (--linked-hub).'));
  } catch (e) {
    if (e instanceof ApiError && e.status === 404) {
      info.append(dl([['Service endpoint', h('code', {}, `https://${c.host}`)], ['Signed in as', c.policy]]),
        notAvailable('Service information (ID scope, linked hubs)'));
    } else info.append(errorBox(e));
  }

  const countRow = async (label, path) => {
    const dd = h('dd', {}, '…');
    counts.querySelector('dl').append(h('dt', {}, label), dd);
    try {
      const r = await countAll(path);
      dd.textContent = `${r.count}${r.more ? '+' : ''}`;
      return r;
    } catch (e) {
      dd.textContent = e instanceof ApiError && e.status === 404 ? 'not available' : e.message;
      return null;
    }
  };
  counts.append(h('dl', { class: 'props' }));
  await countRow('Enrollment groups', '/enrollmentGroups/query');
  await countRow('Individual enrollments', '/enrollments/query');

  // Registrations are listed per group: read the first groups and their records.
  const regDd = h('dd', {}, '…');
  counts.querySelector('dl').append(h('dt', {}, 'Registrations (in groups)'), regDd);
  try {
    const groups = await queryPage('/enrollmentGroups/query', 20, null);
    let n = 0;
    let more = groups.continuation !== null;
    for (const g of groups.items) {
      const page = await queryPage(`/registrations/${enc(g.enrollmentGroupId)}/query`, 100, null);
      n += page.items.length;
      more = more || page.continuation !== null;
    }
    regDd.textContent = `${n}${more ? '+' : ''}`;
  } catch (e) {
    regDd.textContent = e instanceof ApiError && e.status === 404 ? 'not available' : e.message;
  }
  await failures;
};

const RECENT_FAILURES = 10;

// The newest failed attempts of every device (GET /attempts?failed=true): a device refused at
// attestation has no registration record, only its attempt, so the records cannot show it.
async function recentFailures(section) {
  try {
    const r = await api('GET', '/attempts?failed=true', { headers: { 'x-ms-max-item-count': String(RECENT_FAILURES) } });
    const attempts = Array.isArray(r.body) ? r.body : [];
    if (!attempts.length) {
      section.append(h('p', { class: 'muted' }, 'No failed registration attempts.'));
      return;
    }
    section.append(table(['When', 'Registration id', 'Outcome', 'Reason'], attempts.map((a) => {
      const t = a.trace || {};
      return [
        fmtDate(a.timeUtc),
        h('a', { href: `#/registrations/device/${enc(a.registrationId)}`, title: 'Attempt history of this device' }, a.registrationId),
        h('span', {}, statusBadge(a.status || 'failed'), t.errorCode ? ` ${t.errorCode}` : ''),
        h('span', { 'data-field': 'reason', 'data-tracking-id': a.trackingId || '' }, t.summary || t.deviceMessage || '—'),
      ];
    }), `Any device, newest first, at most ${RECENT_FAILURES}; open a device for its attempt history and decision trace.`, true));
    if (r.headers.get('x-ms-continuation')) {
      section.append(h('p', { class: 'muted' }, 'Older failures: ', h('code', {}, 'dpsctl registration failures --max N'), '.'));
    }
  } catch (e) {
    section.append(e instanceof ApiError && e.status === 404 ? notAvailable('The attempt history') : errorBox(e));
  }
}

// A table with a caption; stack: on a phone, each row is shown as a card of labelled cells.
function table(headers, rows, caption, stack = false) {
  return h('div', { class: stack ? 'table-wrap stack' : 'table-wrap' }, h('table', {},
    caption ? h('caption', {}, caption) : null,
    h('thead', {}, h('tr', {}, headers.map((x) => h('th', { scope: 'col' }, x)))),
    h('tbody', {}, rows.length ? rows.map((r) => h('tr', {}, r.map((cell, i) => (i === 0 ? h('th', { scope: 'row' }, cell) : h('td', { 'data-label': headers[i] }, cell)))))
      : h('tr', {}, h('td', { colspan: headers.length, class: 'muted' }, 'Nothing here yet.')))));
}

// A paged list of query results with Previous/Next over x-ms-continuation; on a phone its rows stack as cards.
function pagedList(main, { path, columns, row, label, emptyText, onNotFound }) {
  const state = { stack: [null], size: 20 };
  const holder = h('div', { 'aria-live': 'polite', 'aria-busy': 'false' });
  const prev = h('button', { type: 'button', class: 'secondary', id: 'page-prev' }, 'Previous');
  const next = h('button', { type: 'button', class: 'secondary', id: 'page-next' }, 'Next');
  const where = h('span', { class: 'muted' });
  const size = h('select', { id: 'page-size', 'aria-label': 'Items per page' },
    PAGE_SIZES.map((n) => h('option', { value: n, selected: n === state.size }, `${n} per page`)));
  let filter = '';
  let cont = null;
  const load = async () => {
    holder.setAttribute('aria-busy', 'true');
    try {
      const page = await queryPage(path, state.size, state.stack[state.stack.length - 1]);
      cont = page.continuation;
      const items = filter ? page.items.filter((x) => JSON.stringify(x).toLowerCase().includes(filter)) : page.items;
      holder.replaceChildren(table(columns, items.map(row), label, true));
      if (!page.items.length && emptyText) holder.append(h('p', { class: 'muted' }, emptyText));
      where.textContent = `Page ${state.stack.length}`;
      prev.disabled = state.stack.length === 1;
      next.disabled = !cont;
    } catch (e) {
      if (e instanceof ApiError && e.status === 404 && onNotFound) holder.replaceChildren(onNotFound(e));
      else holder.replaceChildren(errorBox(e));
      prev.disabled = next.disabled = true;
    } finally {
      holder.setAttribute('aria-busy', 'false');
    }
  };
  prev.addEventListener('click', () => { state.stack.pop(); load(); });
  next.addEventListener('click', () => { if (cont) { state.stack.push(cont); load(); } });
  size.addEventListener('change', () => { state.size = Number(size.value); state.stack = [null]; load(); });
  main.append(holder, h('div', { class: 'pager' }, prev, where, next, size));
  load();
  return {
    reload: load,
    filter(text) { filter = text.trim().toLowerCase(); load(); },
  };
}

views.enrollmentList = (main, kindName) => {
  const kind = KINDS[kindName];
  setTitle(kind.tab);
  main.append(h('h1', {}, 'Manage enrollments'), tabs(kindName));
  const panel = h('section', { role: 'tabpanel', 'aria-labelledby': `tab-${kindName}`, id: `panel-${kindName}` });
  main.append(panel);

  const search = h('input', { id: 'search', type: 'search', placeholder: kind.idLabel, autocomplete: 'off' });
  const searchErr = h('div', { class: 'error', role: 'alert', hidden: true });
  panel.append(h('div', { class: 'toolbar' },
    h('form', { role: 'search', class: 'search', onsubmit: async (ev) => {
      ev.preventDefault();
      searchErr.hidden = true;
      const id = search.value.trim();
      if (!id) return;
      try {
        await api('GET', `${kind.base}/${enc(id)}`);
        location.hash = `#/enrollments/${kindName}/${enc(id)}`;
      } catch (e) {
        searchErr.textContent = e instanceof ApiError && e.status === 404 ? `No ${kind.one} with id '${id}'.` : errorBox(e).textContent;
        searchErr.hidden = false;
      }
    } },
    h('label', { for: 'search' }, `Find by ${kind.idLabel.toLowerCase()}`), search,
    h('button', { type: 'submit', class: 'secondary' }, 'Find')),
    h('a', { class: 'button', href: `#/enrollments/${kindName}/new`, id: 'add-enrollment' }, `Add ${kind.one}`)),
  searchErr);

  const list = pagedList(panel, {
    path: `${kind.base}/query`,
    label: kind.tab,
    columns: [kind.idLabel, 'Attestation', 'Status', 'Allocation', 'IoT hubs', 'Last updated', 'Actions'],
    row: (e) => {
      const id = e[kind.idField];
      return [
        h('a', { href: `#/enrollments/${kindName}/${enc(id)}` }, id),
        attestationType(e),
        statusBadge(e.provisioningStatus),
        e.allocationPolicy || 'service default',
        (e.iotHubs && e.iotHubs.length) ? e.iotHubs.join(', ') : 'all linked',
        fmtDate(e.lastUpdatedDateTimeUtc),
        h('button', { type: 'button', class: 'danger small', 'aria-label': `Delete ${id}`, 'data-delete': id,
          onclick: () => deleteEnrollment(kind, id, () => list.reload()) }, 'Delete'),
      ];
    },
    onNotFound: () => notAvailable(kind.tab),
  });
  search.addEventListener('input', () => list.filter(search.value));
};

async function deleteEnrollment(kind, id, after) {
  const extra = kind === KINDS.groups ? ' Devices already registered keep their hub registration; new registrations through this group will fail.' : '';
  if (!(await confirmDialog(`Delete ${kind.one}?`, `Delete ${kind.one} '${id}'? This cannot be undone.${extra}`))) return;
  try {
    await api('DELETE', `${kind.base}/${enc(id)}`);
    toast(`Deleted ${kind.one} '${id}'.`);
    after();
  } catch (e) {
    toast(`Cannot delete '${id}': ${e instanceof ApiError ? e.describe() : e.message}`);
  }
}

// Reads an enrollment with its keys (GET hides symmetric keys), ready to PUT back.
async function readForUpdate(kind, id) {
  const r = await api('GET', `${kind.base}/${enc(id)}`);
  const e = r.body;
  if (e.attestation && e.attestation.type === 'symmetricKey') {
    const a = await api('POST', `${kind.base}/${enc(id)}/attestationmechanism`);
    e.attestation = a.body;
  }
  return e;
}

views.enrollmentDetail = async (main, kindName, id) => {
  const kind = KINDS[kindName];
  setTitle(`${kind.one} ${id}`);
  main.append(h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' },
    h('a', { href: `#/enrollments/${kindName}` }, kind.tab), ' › ', id));
  let e;
  try {
    e = (await api('GET', `${kind.base}/${enc(id)}`)).body;
  } catch (err) {
    main.append(h('h1', {}, id), err instanceof ApiError && err.status === 404 ? h('p', { class: 'error', role: 'alert' }, `No ${kind.one} with id '${id}'.`) : errorBox(err));
    return;
  }
  const enabled = (e.provisioningStatus || 'enabled') === 'enabled';
  main.append(h('h1', {}, id, ' ', statusBadge(e.provisioningStatus)),
    h('div', { class: 'toolbar start' },
      h('a', { class: 'button', href: `#/enrollments/${kindName}/${enc(id)}/edit` }, 'Edit'),
      h('button', { type: 'button', class: 'secondary', id: 'toggle-status', onclick: async () => {
        try {
          const cur = await readForUpdate(kind, id);
          cur.provisioningStatus = enabled ? 'disabled' : 'enabled';
          await api('PUT', `${kind.base}/${enc(id)}`, { body: cur, headers: cur.etag ? { 'if-match': cur.etag } : {} });
          toast(`${enabled ? 'Disabled' : 'Enabled'} '${id}'.`);
          render();
        } catch (err) {
          toast(err instanceof ApiError ? err.describe() : err.message);
        }
      } }, enabled ? 'Disable' : 'Enable'),
      h('a', { class: 'button secondary', href: kindName === 'groups' ? `#/registrations/group/${enc(id)}` : `#/registrations/device/${enc(id)}` }, 'Registration records'),
      h('button', { type: 'button', class: 'danger', id: 'delete-enrollment',
        onclick: () => deleteEnrollment(kind, id, () => { location.hash = `#/enrollments/${kindName}`; }) }, 'Delete')));

  const rp = e.reprovisionPolicy;
  main.append(h('section', { class: 'card', 'aria-labelledby': 'd-settings' }, h('h2', { id: 'd-settings' }, 'Settings'), dl([
    [kind.idLabel, h('code', {}, id)],
    kindName === 'individual' && ['Device id', e.deviceId],
    ['Provisioning status', e.provisioningStatus || 'enabled'],
    ['Attestation', attestationType(e)],
    ['Allocation policy', e.allocationPolicy || 'service default'],
    ['IoT hubs', (e.iotHubs && e.iotHubs.length) ? e.iotHubs.join(', ') : (e.iotHubHostName || 'all linked hubs')],
    e.customAllocationDefinition && ['Custom allocation', `${e.customAllocationDefinition.webhookUrl} (api-version ${e.customAllocationDefinition.apiVersion})`],
    ['Reprovision policy', rp ? `update hub assignment: ${rp.updateHubAssignment ? 'yes' : 'no'}, migrate device data: ${rp.migrateDeviceData ? 'yes' : 'no'}` : 'service default'],
    ['IoT Edge device', e.capabilities && e.capabilities.iotEdge ? 'yes' : 'no'],
    ['Created', fmtDate(e.createdDateTimeUtc)],
    ['Last updated', fmtDate(e.lastUpdatedDateTimeUtc)],
    ['ETag', h('code', {}, e.etag || '')],
  ])));

  const att = h('section', { class: 'card', 'aria-labelledby': 'd-att' }, h('h2', { id: 'd-att' }, 'Attestation'));
  const a = e.attestation || {};
  if (a.type === 'x509' && a.x509) {
    const certs = a.x509[kind.x509] || a.x509.signingCertificates || a.x509.clientCertificates;
    if (certs) {
      for (const which of ['primary', 'secondary']) {
        if (!certs[which]) continue;
        att.append(h('h3', {}, `${which === 'primary' ? 'Primary' : 'Secondary'} certificate`), dl(certInfoRows(certs[which].info)));
      }
    }
    const refs = a.x509.caReferences;
    if (refs) {
      const caLink = (n) => n && h('span', { 'data-ca': n }, h('a', { href: `#/certificates/${enc(n)}` }, n));
      const rows = [['Primary CA certificate', caLink(refs.primary)], ['Secondary CA certificate', caLink(refs.secondary)]];
      att.append(dl(rows));
      // The status of each referenced CA: devices are refused while it is not verified.
      for (const n of [refs.primary, refs.secondary].filter(Boolean)) {
        api('GET', `/certificates/${enc(n)}`).then((r) => {
          const el = att.querySelector(`[data-ca="${CSS.escape(n)}"]`);
          if (el) el.append(' ', verifiedBadge(r.body.properties || {}));
        }, (err) => {
          const el = att.querySelector(`[data-ca="${CSS.escape(n)}"]`);
          if (el && err instanceof ApiError && err.status === 404) el.append(' ', h('span', { class: 'error-text' }, '(not uploaded)'));
        });
      }
    }
  } else if (a.type === 'symmetricKey') {
    const keys = h('div', {}, h('p', { class: 'muted' }, 'Keys are not shown in lists. '),
      h('button', { type: 'button', class: 'secondary', onclick: async () => {
        try {
          const r = await api('POST', `${kind.base}/${enc(id)}/attestationmechanism`);
          const sk = (r.body && r.body.symmetricKey) || {};
          keys.replaceChildren(dl([['Primary key', h('code', {}, sk.primaryKey || '')], ['Secondary key', h('code', {}, sk.secondaryKey || '')]]));
        } catch (err) {
          keys.replaceChildren(errorBox(err));
        }
      } }, 'Show keys'));
    att.append(keys);
  } else if (a.type === 'tpm') {
    att.append(dl([['Endorsement key', h('code', { class: 'wrap' }, (a.tpm && a.tpm.endorsementKey) || '')]]));
  }
  main.append(att);

  main.append(h('section', { class: 'card', 'aria-labelledby': 'd-twin' }, h('h2', { id: 'd-twin' }, 'Initial twin'),
    e.initialTwin ? json(e.initialTwin) : h('p', { class: 'muted' }, 'None.')));
  if (e.registrationState) {
    main.append(h('section', { class: 'card', 'aria-labelledby': 'd-reg' }, h('h2', { id: 'd-reg' }, 'Registration'), registrationDl(e.registrationState)));
  }
};

// A labelled form field.
function field(id, label, input, hint) {
  return h('div', { class: 'field' }, h('label', { for: id }, label), input, hint ? h('small', { id: `${id}-hint` }, hint) : null);
}

// Certificate input: a textarea with a file picker that fills it, and a thumbprint preview.
function certInput(id, label, required) {
  const ta = h('textarea', { id, rows: 6, spellcheck: 'false', class: 'mono', required, 'aria-describedby': `${id}-preview`,
    placeholder: '-----BEGIN CERTIFICATE-----' });
  const file = h('input', { type: 'file', id: `${id}-file`, accept: '.pem,.crt,.cer,.der' });
  const preview = h('output', { id: `${id}-preview`, class: 'preview', for: id });
  const update = async () => {
    if (!ta.value.trim()) { preview.replaceChildren(); return; }
    try {
      const t = await thumbprints(ta.value);
      preview.replaceChildren(dl([['SHA-1 thumbprint', h('code', { 'data-field': 'sha1' }, t.sha1)], ['SHA-256 thumbprint', h('code', { 'data-field': 'sha256' }, t.sha256)]]),
        h('small', { class: 'muted' }, 'Computed in this browser; the server computes the full certificate information on save.'));
    } catch (e) {
      preview.replaceChildren(h('span', { class: 'error' }, `Not a certificate: ${e.message}`));
    }
  };
  ta.addEventListener('input', update);
  file.addEventListener('change', async () => {
    const f = file.files[0];
    if (!f) return;
    if (f.size > 64 * 1024) { preview.replaceChildren(h('span', { class: 'error' }, 'The file is larger than 64 KiB.')); return; }
    const bytes = new Uint8Array(await f.arrayBuffer());
    const text = new TextDecoder().decode(bytes);
    ta.value = text.includes('-----BEGIN') ? text : bytesToB64(bytes);
    update();
  });
  return h('fieldset', { class: 'cert' }, h('legend', {}, label),
    h('label', { for: `${id}-file` }, 'Upload a PEM or DER file'), file,
    h('label', { for: id }, 'or paste PEM text'), ta, preview);
}

views.enrollmentForm = async (main, kindName, id) => {
  const kind = KINDS[kindName];
  const editing = id !== undefined;
  setTitle(editing ? `Edit ${id}` : `Add ${kind.one}`);
  main.append(h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' },
    h('a', { href: `#/enrollments/${kindName}` }, kind.tab), ' › ', editing ? h('a', { href: `#/enrollments/${kindName}/${enc(id)}` }, id) : 'new'));
  main.append(h('h1', {}, editing ? `Edit ${kind.one} ${id}` : `Add ${kind.one}`));
  let cur = null;
  if (editing) {
    try {
      cur = await readForUpdate(kind, id);
    } catch (e) {
      main.append(errorBox(e));
      return;
    }
  }
  const err = h('div', { class: 'error', role: 'alert', hidden: true, id: 'form-error' });
  const idIn = h('input', { id: 'f-id', required: true, maxlength: 128, autocomplete: 'off', value: editing ? id : '', readonly: editing,
    pattern: '[A-Za-z0-9._:\\-]+' });
  const devIn = h('input', { id: 'f-device', maxlength: 128, value: (cur && cur.deviceId) || '' });
  const groupCaRef = kindName === 'groups';
  let curType = cur ? cur.attestation.type : 'x509';
  if (groupCaRef && cur && curType === 'x509' && cur.attestation.x509 && cur.attestation.x509.caReferences) curType = 'x509ca';
  // An X.509 group may switch between its own certificates and CA references while editing.
  const x509Edit = editing && (curType === 'x509' || curType === 'x509ca');
  const attSel = h('select', { id: 'f-att', disabled: editing && !x509Edit },
    h('option', { value: 'x509' }, groupCaRef ? 'X.509: upload the signing certificate' : 'X.509 certificate'),
    groupCaRef ? h('option', { value: 'x509ca' }, 'X.509: a CA certificate uploaded under Certificates') : null,
    h('option', { value: 'symmetricKey', disabled: x509Edit }, 'Symmetric key'),
    kindName === 'individual' ? h('option', { value: 'tpm' }, 'TPM') : null);
  attSel.value = curType;
  const x509Box = h('div', {},
    editing ? h('p', { class: 'muted' }, 'Leave the certificates empty to keep the current ones.') : null,
    certInput('f-cert1', `Primary ${kind.x509Label}`, !editing),
    certInput('f-cert2', 'Secondary certificate (optional)', false));
  const refs = (curType === 'x509ca' && cur.attestation.x509.caReferences) || {};
  const ca1 = h('select', { id: 'f-ca1', 'aria-describedby': 'f-ca-note' }, h('option', { value: '' }, 'choose a CA certificate'));
  const ca2 = h('select', { id: 'f-ca2' }, h('option', { value: '' }, 'none'));
  const caNote = h('p', { id: 'f-ca-note', class: 'muted' });
  const caBox = h('div', { hidden: true }, field('f-ca1', 'Primary CA certificate', ca1), field('f-ca2', 'Secondary CA certificate (optional)', ca2), caNote);
  let cas = [];
  let casErr = null;
  const showCaNote = () => {
    if (casErr) {
      caNote.replaceChildren(h('span', { class: 'error-text' }, `Cannot list the CA certificates: ${casErr instanceof ApiError ? casErr.describe() : casErr.message}`));
      return;
    }
    const chosen = cas.filter((c) => c.name === ca1.value || c.name === ca2.value);
    const unverified = chosen.filter((c) => !(c.properties || {}).isVerified).map((c) => `'${c.name}'`);
    caNote.replaceChildren(!cas.length ? ['No CA certificate is uploaded yet: ', h('a', { href: CA_UPLOAD_HASH }, 'upload one'), ' first.']
      : unverified.length ? h('span', { class: 'error-text' }, `${unverified.join(' and ')} ${unverified.length > 1 ? 'are' : 'is'} not verified: ` +
        'devices under it are refused until it is verified under Certificates.')
        : 'Devices whose chain leads to the chosen CA are accepted while it stays verified.');
  };
  if (groupCaRef) {
    try {
      cas = await listCertificates();
    } catch (e) {
      if (!(e instanceof ApiError && e.status === 404)) casErr = e;
    }
    for (const c of cas) {
      const label = `${c.name} — ${(c.properties || {}).subject || '?'}${(c.properties || {}).isVerified ? '' : ' (not verified)'}`;
      ca1.append(h('option', { value: c.name }, label));
      ca2.append(h('option', { value: c.name }, label));
    }
    // A reference to a CA that is gone stays selectable, so saving does not drop it silently.
    for (const [sel, v] of [[ca1, refs.primary], [ca2, refs.secondary]]) {
      if (v && !cas.some((c) => c.name.toLowerCase() === v.toLowerCase())) sel.append(h('option', { value: v }, `${v} (not uploaded)`));
      if (v) sel.value = (cas.find((c) => c.name.toLowerCase() === v.toLowerCase()) || { name: v }).name;
    }
    ca1.addEventListener('change', showCaNote);
    ca2.addEventListener('change', showCaNote);
    showCaNote();
  }
  const sk = (cur && cur.attestation.symmetricKey) || {};
  const key1 = h('input', { id: 'f-key1', class: 'mono', autocomplete: 'off', value: sk.primaryKey || '' });
  const key2 = h('input', { id: 'f-key2', class: 'mono', autocomplete: 'off', value: sk.secondaryKey || '' });
  const skBox = h('div', {}, field('f-key1', 'Primary key (base64; empty: generated by the server)', key1),
    field('f-key2', 'Secondary key (base64; empty: generated by the server)', key2));
  const ek = h('textarea', { id: 'f-ek', rows: 3, class: 'mono' }, (cur && cur.attestation.tpm && cur.attestation.tpm.endorsementKey) || '');
  const tpmBox = h('div', {}, field('f-ek', 'Endorsement key (base64)', ek));
  const showAtt = () => {
    x509Box.hidden = attSel.value !== 'x509';
    caBox.hidden = attSel.value !== 'x509ca';
    skBox.hidden = attSel.value !== 'symmetricKey';
    tpmBox.hidden = attSel.value !== 'tpm';
  };
  attSel.addEventListener('change', showAtt);
  showAtt();

  const status = h('select', { id: 'f-status' }, h('option', { value: 'enabled' }, 'enabled'), h('option', { value: 'disabled' }, 'disabled'));
  status.value = (cur && cur.provisioningStatus) || 'enabled';
  const alloc = h('select', { id: 'f-alloc' }, h('option', { value: '' }, 'service default'),
    ['hashed', 'geoLatency', 'static'].map((p) => h('option', { value: p }, p)));
  alloc.value = (cur && cur.allocationPolicy) || '';
  const hubs = h('input', { id: 'f-hubs', value: (cur && cur.iotHubs || []).join(', '), placeholder: 'hub-a.example.net, hub-b.example.net' });
  const upd = h('input', { type: 'checkbox', id: 'f-rp-upd', checked: !cur || !cur.reprovisionPolicy || cur.reprovisionPolicy.updateHubAssignment });
  const mig = h('input', { type: 'checkbox', id: 'f-rp-mig', checked: !cur || !cur.reprovisionPolicy || cur.reprovisionPolicy.migrateDeviceData });
  const edge = h('input', { type: 'checkbox', id: 'f-edge', checked: !!(cur && cur.capabilities && cur.capabilities.iotEdge) });
  const twin = h('textarea', { id: 'f-twin', rows: 6, class: 'mono', spellcheck: 'false', placeholder: '{"tags": {}, "properties": {"desired": {}}}' },
    cur && cur.initialTwin ? JSON.stringify(cur.initialTwin, null, 2) : '');
  const save = h('button', { type: 'submit', id: 'f-save' }, editing ? 'Save' : 'Create');

  const form = h('form', { class: 'card form', novalidate: true, onsubmit: async (ev) => {
    ev.preventDefault();
    err.hidden = true;
    try {
      const body = cur ? { ...cur } : {};
      const newId = idIn.value.trim();
      if (!newId) throw new Error(`${kind.idLabel} is required`);
      body[kind.idField] = newId;
      if (kindName === 'individual') {
        if (devIn.value.trim()) body.deviceId = devIn.value.trim();
        else delete body.deviceId;
      }
      const type = attSel.value;
      if (type === 'x509ca') {
        if (!ca1.value) throw new Error('choose the primary CA certificate');
        const r = { primary: ca1.value };
        if (ca2.value && ca2.value !== ca1.value) r.secondary = ca2.value;
        body.attestation = { type: 'x509', x509: { caReferences: r } };
      } else if (type === 'x509') {
        const p = $('f-cert1').value.trim();
        const s = $('f-cert2').value.trim();
        if (p || s || !editing || curType !== 'x509') {
          if (!p) throw new Error('the primary certificate is required');
          for (const [name, v] of [['primary', p], ['secondary', s]]) {
            if (v) {
              try { certDer(v); } catch (e) { throw new Error(`the ${name} certificate: ${e.message}`); }
            }
          }
          const certs = { primary: { certificate: p } };
          if (s) certs.secondary = { certificate: s };
          body.attestation = { type: 'x509', x509: { [kind.x509]: certs } };
        }
      } else if (type === 'symmetricKey') {
        const k = {};
        if (key1.value.trim()) k.primaryKey = key1.value.trim();
        if (key2.value.trim()) k.secondaryKey = key2.value.trim();
        body.attestation = { type: 'symmetricKey', symmetricKey: k };
      } else {
        if (!ek.value.trim()) throw new Error('the endorsement key is required');
        body.attestation = { type: 'tpm', tpm: { endorsementKey: ek.value.trim() } };
      }
      body.provisioningStatus = status.value;
      if (alloc.value) body.allocationPolicy = alloc.value;
      else delete body.allocationPolicy;
      const hubList = hubs.value.split(/[\s,]+/).filter(Boolean);
      if (hubList.length) body.iotHubs = hubList;
      else delete body.iotHubs;
      body.reprovisionPolicy = { updateHubAssignment: upd.checked, migrateDeviceData: mig.checked };
      body.capabilities = { iotEdge: edge.checked };
      if (twin.value.trim()) {
        try {
          body.initialTwin = JSON.parse(twin.value);
        } catch (e) {
          throw new Error(`the initial twin is not valid JSON: ${e.message}`);
        }
      } else delete body.initialTwin;
      delete body.registrationState;
      save.disabled = true;
      const headers = editing && cur.etag ? { 'if-match': cur.etag } : {};
      await api('PUT', `${kind.base}/${enc(newId)}`, { body, headers });
      toast(`${editing ? 'Saved' : 'Created'} ${kind.one} '${newId}'.`);
      location.hash = `#/enrollments/${kindName}/${enc(newId)}`;
    } catch (e) {
      err.textContent = e instanceof ApiError ? (e.status === 412 ? 'Someone changed this enrollment meanwhile: reload and edit again.' : e.describe()) : `Cannot save: ${e.message}.`;
      err.hidden = false;
      err.scrollIntoView({ block: 'nearest' });
    } finally {
      save.disabled = false;
    }
  } },
  err,
  field('f-id', kind.idLabel, idIn, 'Letters, digits, . _ - : (at most 128)'),
  kindName === 'individual' ? field('f-device', 'Device id (empty: the registration id)', devIn) : null,
  field('f-att', 'Attestation', attSel),
  x509Box, caBox, skBox, tpmBox,
  field('f-status', 'Provisioning status', status),
  field('f-alloc', 'Allocation policy', alloc),
  field('f-hubs', 'IoT hubs (empty: all linked hubs)', hubs),
  h('fieldset', {}, h('legend', {}, 'Reprovision policy'),
    h('label', { class: 'check' }, upd, ' Update the hub assignment when a device re-registers'),
    h('label', { class: 'check' }, mig, ' Migrate device data to the new hub')),
  h('label', { class: 'check' }, edge, ' IoT Edge device'),
  field('f-twin', 'Initial twin (JSON)', twin),
  h('div', { class: 'actions' }, save, h('a', { class: 'button secondary', href: editing ? `#/enrollments/${kindName}/${enc(id)}` : `#/enrollments/${kindName}` }, 'Cancel')));
  main.append(form);
  (editing ? status : idIn).focus();
};

function registrationDl(r) {
  return dl([
    ['Registration id', h('code', {}, r.registrationId)],
    ['Status', statusBadge(r.status)],
    ['Substatus', r.substatus],
    ['Device id', r.deviceId],
    ['Assigned hub', r.assignedHub],
    r.errorCode && ['Error', h('span', { class: 'error-text', 'data-field': 'error' }, `${r.errorCode}: ${r.errorMessage || ''}`)],
    ['Created', fmtDate(r.createdDateTimeUtc)],
    ['Last updated', fmtDate(r.lastUpdatedDateTimeUtc)],
  ]);
}

views.registrations = (main) => {
  setTitle('Registration records');
  main.append(h('h1', {}, 'Registration records'));
  const gid = h('input', { id: 'r-group', autocomplete: 'off', list: 'r-groups' });
  const groups = h('datalist', { id: 'r-groups' });
  const rid = h('input', { id: 'r-device', autocomplete: 'off' });
  main.append(h('div', { class: 'grid' },
    h('form', { class: 'card', onsubmit: (ev) => { ev.preventDefault(); if (gid.value.trim()) location.hash = `#/registrations/group/${enc(gid.value.trim())}`; } },
      h('h2', {}, 'Records of an enrollment group'), field('r-group', 'Enrollment group id', gid), groups,
      h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Show records'))),
    h('form', { class: 'card', onsubmit: (ev) => { ev.preventDefault(); if (rid.value.trim()) location.hash = `#/registrations/device/${enc(rid.value.trim())}`; } },
      h('h2', {}, 'Record of a device'), field('r-device', 'Registration id', rid),
      h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Show record')))));
  queryPage('/enrollmentGroups/query', 100, null).then((p) => {
    groups.append(...p.items.map((g) => h('option', { value: g.enrollmentGroupId })));
  }).catch(() => {});
};

views.groupRegistrations = (main, gid) => {
  setTitle(`Registrations of ${gid}`);
  main.append(h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, h('a', { href: '#/registrations' }, 'Registration records'), ' › ', gid),
    h('h1', {}, 'Registrations of group ', h('a', { href: `#/enrollments/groups/${enc(gid)}` }, gid)));
  pagedList(main, {
    path: `/registrations/${enc(gid)}/query`,
    label: `Registration records of ${gid}`,
    columns: ['Registration id', 'Device id', 'Status', 'Assigned hub', 'Error', 'Last updated'],
    row: (r) => [h('a', { href: `#/registrations/device/${enc(r.registrationId)}` }, r.registrationId), r.deviceId || '—', statusBadge(r.status),
      r.assignedHub || '—', r.errorCode ? `${r.errorCode}: ${r.errorMessage || ''}` : '', fmtDate(r.lastUpdatedDateTimeUtc)],
    emptyText: 'No device has registered through this group yet.',
    onNotFound: (e) => (/group|enrollment/i.test(e.message) ? errorBox(e) : notAvailable('Registration records')),
  });
};

views.deviceRegistration = async (main, rid) => {
  setTitle(`Registration ${rid}`);
  main.append(h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, h('a', { href: '#/registrations' }, 'Registration records'), ' › ', rid),
    h('h1', {}, `Registration ${rid}`));
  const rec = h('section', { class: 'card', 'aria-labelledby': 'reg-rec' }, h('h2', { id: 'reg-rec' }, 'Current record'));
  const hist = h('section', { class: 'card wide', 'aria-labelledby': 'reg-hist' }, h('h2', { id: 'reg-hist' }, 'Attempt history'));
  main.append(rec, hist);
  try {
    const r = (await api('GET', `/registrations/${enc(rid)}`)).body;
    rec.append(registrationDl(r), h('div', { class: 'actions' }, h('button', { type: 'button', class: 'danger', onclick: async () => {
      if (!(await confirmDialog('Delete registration record?', `Delete the registration record of '${rid}'? The device stays in its hub; its next registration is treated as an initial assignment.`))) return;
      try {
        await api('DELETE', `/registrations/${enc(rid)}`);
        toast(`Deleted the registration record of '${rid}'.`);
        render();
      } catch (e) {
        toast(e instanceof ApiError ? e.describe() : e.message);
      }
    } }, 'Delete record')));
  } catch (e) {
    rec.append(e instanceof ApiError && e.status === 404 ? h('p', { class: 'muted' }, `No registration record for '${rid}'.`) : errorBox(e));
  }
  try {
    const r = (await api('GET', `/registrations/${enc(rid)}/attempts`)).body;
    const attempts = Array.isArray(r) ? r : (r && (r.attempts || r.value)) || [];
    if (!attempts.length) hist.append(h('p', { class: 'muted' }, 'No attempts recorded.'));
    hist.append(h('ol', { class: 'attempts', reversed: true }, attempts.map((a) => attemptItem(a))));
  } catch (e) {
    hist.append(e instanceof ApiError && e.status === 404 ? notAvailable('The attempt history') : errorBox(e));
  }
};

// One entry of GET /registrations/{id}/attempts: {attemptId, timeUtc, success, status
// (assigned|failed|disabled|unauthorized), trackingId, operationId, attestationType,
// enrollment {kind, id}, trace {errorCode, summary, deviceMessage, steps, omitted}, registrationState}.
function attemptItem(a) {
  const t = a.trace || {};
  const st = a.registrationState || {};
  const enr = a.enrollment || null;
  const failed = a.success === false || (a.success === undefined && a.status !== 'assigned');
  const steps = t.steps || [];
  const attestation = { x509: 'X.509', symmetricKey: 'symmetric key', tpm: 'TPM' }[a.attestationType] || a.attestationType;
  return h('li', { class: `attempt ${failed ? 'failed' : 'ok'}`, 'data-tracking-id': a.trackingId || '' },
    h('div', { class: 'attempt-head' }, statusBadge(a.status || (failed ? 'failed' : 'assigned')), ' ',
      h('time', { datetime: a.timeUtc || '' }, fmtDate(a.timeUtc)),
      attestation ? ` · ${attestation}` : '',
      enr && enr.id ? ` · ${enr.kind === 'group' ? 'enrollment group' : 'individual enrollment'} ${enr.id}` : ''),
    // The summary of a success already names the hub and the device id.
    !failed && st.assignedHub && !t.summary ? h('p', {}, 'Assigned to ', h('code', {}, st.assignedHub), ' as device ',
      h('code', {}, st.deviceId || '?')) : null,
    t.summary ? h('p', { class: failed ? 'error-text' : '', 'data-field': 'reason' },
      t.errorCode ? `${t.errorCode}: ` : '', t.summary) : null,
    failed && t.deviceMessage ? h('p', { class: 'muted', 'data-field': 'device-message' }, 'The device was told: ', t.deviceMessage) : null,
    a.trackingId ? h('p', { class: 'muted' }, 'Tracking id ', h('code', {}, a.trackingId)) : null,
    steps.length ? h('details', { open: failed }, h('summary', {}, `Decision trace (${steps.length} steps${t.omitted ? `, ${t.omitted} omitted` : ''})`),
      h('ol', { class: 'trace' }, steps.map((s) => h('li', {}, typeof s === 'string' ? s : JSON.stringify(s))))) : null);
}

// ---------------------------------------------------------------- CA certificates

// A CertificateResponse (docs/ca-certificates.md): {name, etag, id, type, properties: {subject,
// issuer, thumbprint (SHA-1), sha256Thumbprint, serialNumber, notBeforeUtc, notAfterUtc, expiry
// (RFC 1123), isVerified, verifiedDateTimeUtc, certificate (PEM), created, updated}}. The answer
// of generateVerificationCode adds properties.verificationCode and verificationCodeExpiry.

// The rule the server applies to certificate names.
const CA_NAME_RE = /^[A-Za-z0-9._-]{1,64}$/;

// The upload form's route: '+' is not allowed in a certificate name, so no CA can shadow it.
const CA_UPLOAD_HASH = '#/certificates/+upload';

async function listCertificates() {
  const r = (await api('GET', '/certificates')).body;
  return r && Array.isArray(r.value) ? r.value : [];
}

function verifiedBadge(p) {
  return p.isVerified ? h('span', { class: 'badge verified', 'data-field': 'verified' }, 'verified')
    : h('span', { class: 'badge unverified', 'data-field': 'verified' }, 'not verified');
}

function expiryText(p) {
  const t = Date.parse(p.notAfterUtc || p.expiry || '');
  if (Number.isNaN(t)) return p.expiry || '—';
  return `${fmtDate(new Date(t).toISOString())}${t < Date.now() ? ' (expired)' : ''}`;
}

// A word for the shell: quoted unless it is plainly safe.
function shellWord(s) {
  return /^[A-Za-z0-9_./:@%+=,-]+$/.test(s) ? s : `'${s.replace(/'/g, "'\\''")}'`;
}

// A Copy button for the text getText() returns; says in the live region whether it worked.
function copyButton(getText, label) {
  return h('button', { type: 'button', class: 'secondary small', 'aria-label': label, onclick: async () => {
    try {
      await navigator.clipboard.writeText(getText());
      toast('Copied to the clipboard.');
    } catch {
      toast('This browser refused the clipboard: select the text and copy it.');
    }
  } }, 'Copy');
}

// A command line shown in a code block with its own Copy button.
function commandLine(id, label) {
  const code = h('code', { id, class: 'wrap' });
  return { code, node: h('div', { class: 'command' }, h('pre', { class: 'json' }, code), copyButton(() => code.textContent, `Copy: ${label}`)) };
}

// Deletes a CA certificate after a confirmation, with If-Match: etag. Resolves true once deleted.
async function deleteCertificate(name, etag, errBox) {
  if (!(await confirmDialog('Delete CA certificate?', `Delete CA certificate '${name}'? Enrollment groups that reference it ` +
    'stop accepting devices under it at their next registration. This cannot be undone.'))) return false;
  errBox.hidden = true;
  try {
    await api('DELETE', `/certificates/${enc(name)}`, { headers: etag ? { 'if-match': etag } : {} });
    toast(`Deleted CA certificate '${name}'.`);
    return true;
  } catch (e) {
    errBox.textContent = e instanceof ApiError && e.status === 412
      ? `CA certificate '${name}' changed since this page read it: reload the page and try again.`
      : `Cannot delete '${name}': ${e instanceof ApiError ? e.describe() : e.message}`;
    errBox.hidden = false;
    errBox.focus();
    return false;
  }
}

views.certificates = async (main) => {
  setTitle('CA certificates');
  const title = h('h1', { tabindex: -1 }, 'CA certificates');
  const err = h('div', { class: 'error', role: 'alert', hidden: true, tabindex: -1, id: 'cert-error' });
  main.append(title, h('p', { class: 'muted' }, 'CA certificates that enrollment groups can trust by name (',
    h('code', {}, 'attestation.x509.caReferences'), '). Devices under a CA are accepted only once it is verified: by a proof ',
    'of possession of its private key, or marked verified when it is uploaded.'),
  h('div', { class: 'toolbar start' }, h('a', { class: 'button', href: CA_UPLOAD_HASH, id: 'add-certificate' }, 'Upload a CA certificate')),
  err);
  const holder = h('div', { 'aria-live': 'polite' });
  main.append(holder);
  const load = async () => {
    let list;
    try {
      list = await listCertificates();
    } catch (e) {
      holder.replaceChildren(e instanceof ApiError && e.status === 404 ? notAvailable('CA certificate management') : errorBox(e));
      return;
    }
    holder.replaceChildren(table(['Name', 'Subject', 'Thumbprint (SHA-1)', 'Status', 'Expires', 'Actions'], list.map((c) => {
      const p = c.properties || {};
      return [h('a', { href: `#/certificates/${enc(c.name)}` }, c.name), p.subject || '—',
        h('code', { class: 'thumb' }, p.thumbprint || '—'), verifiedBadge(p), expiryText(p),
        h('button', { type: 'button', class: 'danger small', 'aria-label': `Delete ${c.name}`, 'data-delete': c.name, onclick: async () => {
          if (await deleteCertificate(c.name, c.etag, err)) {
            await load();
            title.focus();
          }
        } }, 'Delete')];
    }), 'CA certificates', true));
    if (!list.length) holder.append(h('p', { class: 'muted' }, 'No CA certificate is uploaded yet.'));
  };
  await load();
};

views.certificateUpload = (main) => {
  setTitle('Upload a CA certificate');
  main.append(h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, h('a', { href: '#/certificates' }, 'CA certificates'), ' › upload'),
    h('h1', {}, 'Upload a CA certificate'));
  const err = h('div', { class: 'error', role: 'alert', hidden: true, id: 'c-error' });
  const nameIn = h('input', { id: 'c-name', required: true, maxlength: 64, autocomplete: 'off', pattern: '[A-Za-z0-9._\\-]{1,64}',
    'aria-describedby': 'c-name-hint' });
  const verified = h('input', { type: 'checkbox', id: 'c-verified' });
  const save = h('button', { type: 'submit', id: 'c-upload' }, 'Upload');
  main.append(h('form', { class: 'card form', novalidate: true, onsubmit: async (ev) => {
    ev.preventDefault();
    err.hidden = true;
    const name = nameIn.value.trim();
    try {
      if (!CA_NAME_RE.test(name)) throw new Error('the name must be 1 to 64 letters, digits, \'.\', \'_\' or \'-\'');
      const pem = $('c-cert').value.trim();
      if (!pem) throw new Error('the certificate is required');
      certDer(pem);
      save.disabled = true;
      await api('PUT', `/certificates/${enc(name)}`, { body: { certificate: pem, isVerified: verified.checked } });
      toast(`Uploaded CA certificate '${name}'.`);
      location.hash = `#/certificates/${enc(name)}`;
    } catch (e) {
      if (e instanceof ApiError && e.status === 409) {
        err.textContent = `${e.message}. Delete '${name}' first, or choose another name.`;
      } else err.textContent = e instanceof ApiError ? e.describe() : `Cannot upload: ${e.message}.`;
      err.hidden = false;
      err.scrollIntoView({ block: 'nearest' });
    } finally {
      save.disabled = false;
    }
  } },
  err,
  field('c-name', 'Name', nameIn, 'Letters, digits, . _ - (at most 64); enrollment groups refer to the CA by this name'),
  certInput('c-cert', 'CA certificate (root or intermediate, basicConstraints CA:TRUE)', true),
  h('label', { class: 'check' }, verified, ' Mark as verified on upload (you vouch for this CA without a proof of possession)'),
  h('div', { class: 'actions' }, save, h('a', { class: 'button secondary', href: '#/certificates' }, 'Cancel'))));
  nameIn.focus();
};

views.certificateDetail = async (main, name) => {
  setTitle(`CA certificate ${name}`);
  main.append(h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, h('a', { href: '#/certificates' }, 'CA certificates'), ' › ', name));
  let cur;
  try {
    cur = (await api('GET', `/certificates/${enc(name)}`)).body;
  } catch (e) {
    main.append(h('h1', {}, name), e instanceof ApiError && e.status === 404
      ? h('p', { class: 'error', role: 'alert' }, `No CA certificate named '${name}'.`) : errorBox(e));
    return;
  }
  const badge = h('span');
  const err = h('div', { class: 'error', role: 'alert', hidden: true, tabindex: -1, id: 'cert-error' });
  const info = h('div');
  const proof = h('section', { class: 'card', 'aria-labelledby': 'c-pop', id: 'c-proof-section' });
  const show = () => {
    const p = cur.properties || {};
    badge.replaceChildren(verifiedBadge(p));
    info.replaceChildren(dl([
      ['Name', h('code', {}, cur.name)],
      ['Status', p.isVerified ? ['verified', p.verifiedDateTimeUtc ? ` on ${fmtDate(p.verifiedDateTimeUtc)}` : ''] : 'not verified: devices under it are refused'],
      ['Subject', p.subject],
      ['Issuer', p.issuer],
      ['Valid from', fmtDate(p.notBeforeUtc)],
      ['Valid until', expiryText(p)],
      ['Serial number', h('code', {}, p.serialNumber || '')],
      ['Thumbprint (SHA-1)', h('code', { class: 'thumb', 'data-field': 'sha1' }, p.thumbprint || '')],
      ['SHA-256 thumbprint', h('code', { class: 'thumb', 'data-field': 'sha256' }, p.sha256Thumbprint || '')],
      ['Uploaded', fmtDate(p.created)],
      ['Last updated', fmtDate(p.updated)],
      ['ETag', h('code', {}, cur.etag || '')],
    ]), p.certificate ? h('details', {}, h('summary', {}, 'PEM'), h('pre', { class: 'json' }, p.certificate)) : null);
  };
  main.append(h('h1', {}, name, ' ', badge),
    h('div', { class: 'toolbar start' },
      h('button', { type: 'button', class: 'danger', id: 'c-delete', onclick: async () => {
        if (await deleteCertificate(name, cur.etag, err)) location.hash = '#/certificates';
      } }, 'Delete')),
    err,
    h('section', { class: 'card', 'aria-labelledby': 'c-info' }, h('h2', { id: 'c-info' }, 'Certificate'), info),
    proof);
  show();
  proofSection(proof, name, () => cur, (c) => { cur = c; show(); });
};

// The proof of possession: generate a code, show the commands that make the proof, verify it.
function proofSection(sec, name, getCur, setCur) {
  const head = h('h2', { id: 'c-pop' }, 'Proof of possession');
  if ((getCur().properties || {}).isVerified) {
    sec.replaceChildren(head, h('p', {}, 'This CA is verified. Enrollment groups can trust it as ', h('code', {}, name), '.'));
    return;
  }
  const prefix = h('input', { id: 'c-prefix', class: 'mono', autocomplete: 'off', value: `pki/${name}`, 'aria-describedby': 'c-prefix-hint' });
  const codeIn = h('input', { id: 'c-code', class: 'mono', readonly: true, size: 64 });
  const codeNote = h('p', { class: 'muted', id: 'c-code-note' });
  const make = commandLine('c-cmd-create', 'the command that makes the proof');
  const verifyCmd = commandLine('c-cmd-verify', 'the command that verifies it');
  const prove = commandLine('c-cmd-prove', 'the one-step command');
  const codeBox = h('div', { id: 'c-code-box', hidden: true },
    h('label', { for: 'c-code' }, 'Verification code'),
    h('div', { class: 'copy-row' }, codeIn, copyButton(() => codeIn.value, 'Copy the verification code')), codeNote);
  const cmdBox = h('div', { hidden: true },
    h('p', {}, 'Make the proof certificate (CN = the code, signed with the CA\'s key):'), make.node,
    h('p', {}, 'Then upload its PEM in step 3, or verify from the command line:'), verifyCmd.node);
  const updateCommands = () => {
    const pre = shellWord(prefix.value.trim() || 'PREFIX');
    make.code.textContent = `dpsctl cert create-verification --ca ${pre} --code ${codeIn.value || 'CODE'} --out ${shellWord(`${prefix.value.trim() || 'PREFIX'}-proof`)}`;
    verifyCmd.code.textContent = `dpsctl ca verify --name ${name} --file ${shellWord(`${prefix.value.trim() || 'PREFIX'}-proof.pem`)}`;
    prove.code.textContent = `dpsctl ca prove --name ${name} --ca ${pre}`;
  };
  prefix.addEventListener('input', updateCommands);
  updateCommands();
  const genErr = h('div', { class: 'error', role: 'alert', hidden: true });
  const gen = h('button', { type: 'button', id: 'c-gen', onclick: async () => {
    genErr.hidden = true;
    gen.disabled = true;
    try {
      const r = (await api('POST', `/certificates/${enc(name)}/generateVerificationCode`)).body;
      const p = r.properties || {};
      if (!p.verificationCode) throw new Error('the server answered without a verification code');
      codeIn.value = p.verificationCode;
      codeNote.textContent = `Valid until ${fmtDate(p.verificationCodeExpiry)}. A new code replaces this one, and the code is not shown again once you leave this page.`;
      setCur(r);
      updateCommands();
      codeBox.hidden = false;
      cmdBox.hidden = false;
      gen.textContent = 'Generate a new code';
      codeIn.focus();
      codeIn.select();
    } catch (e) {
      genErr.textContent = `Cannot generate a code: ${e instanceof ApiError ? e.describe() : e.message}`;
      genErr.hidden = false;
    } finally {
      gen.disabled = false;
    }
  } }, 'Generate verification code');
  const result = h('div', { id: 'c-verify-result', tabindex: -1 });
  const verify = h('button', { type: 'submit', id: 'c-verify' }, 'Verify');
  const form = h('form', { novalidate: true, onsubmit: async (ev) => {
    ev.preventDefault();
    result.replaceChildren();
    const pem = $('c-proof').value.trim();
    try {
      if (!pem) throw new Error('choose or paste the verification certificate first');
      certDer(pem);
    } catch (e) {
      result.replaceChildren(h('p', { class: 'error', role: 'alert' }, `Cannot verify: ${e.message}.`));
      result.focus();
      return;
    }
    verify.disabled = true;
    try {
      const r = (await api('POST', `/certificates/${enc(name)}/verify`, { body: { certificate: pem } })).body;
      setCur(r);
      proofSection(sec, name, getCur, setCur);
      const ok = h('p', { class: 'success', role: 'status', id: 'c-verify-result', tabindex: -1 },
        `Verified: the server accepted the proof of possession for '${name}'.`);
      sec.insertBefore(ok, sec.children[1]);
      ok.focus();
    } catch (e) {
      result.replaceChildren(h('p', { class: 'error', role: 'alert', 'data-field': 'reason' },
        `The server refused the proof: ${e instanceof ApiError ? e.describe() : e.message}`));
      result.focus();
    } finally {
      verify.disabled = false;
    }
  } },
  certInput('c-proof', 'Verification certificate (the proof)', true),
  h('div', { class: 'actions' }, verify));
  sec.replaceChildren(head,
    h('p', {}, 'Prove that you hold this CA\'s private key: get a one-hour code, sign a certificate whose CN is the code with the CA\'s key, and upload it.'),
    h('ol', { class: 'steps' },
      h('li', {}, h('h3', {}, 'Get a code'), genErr, h('div', { class: 'actions' }, gen), codeBox),
      h('li', {}, h('h3', {}, 'Make the proof'),
        field('c-prefix', 'CA file prefix (PREFIX.pem and PREFIX.key, as dpsctl cert writes them)', prefix,
          'dpsctl reads the service connection string from $DPS_CONNECTION_STRING or --connection-string'),
        cmdBox,
        h('p', {}, 'Or do all three steps in one command (it gets its own code, which replaces the one above):'), prove.node),
      h('li', {}, h('h3', {}, 'Verify'), form, result)));
}

// ---------------------------------------------------------------- routing

function routeOf(hash, root) {
  const parts = hash.replace(/^#\/?/, '').split('/').filter(Boolean).map((p) => {
    try { return decodeURIComponent(p); } catch { return p; }
  });
  const [a, b, c, d] = parts;
  if (a === 'enrollments') {
    const kind = KINDS[b] ? b : 'groups';
    if (!c) return ['enrollments', () => views.enrollmentList(root, kind)];
    if (c === 'new' && parts.length === 3) return ['enrollments', () => views.enrollmentForm(root, kind)];
    if (d === 'edit') return ['enrollments', () => views.enrollmentForm(root, kind, c)];
    return ['enrollments', () => views.enrollmentDetail(root, kind, c)];
  }
  if (a === 'registrations') {
    if (b === 'group' && c) return ['registrations', () => views.groupRegistrations(root, c)];
    if (b === 'device' && c) return ['registrations', () => views.deviceRegistration(root, c)];
    return ['registrations', () => views.registrations(root)];
  }
  if (a === 'certificates') {
    if (b === '+upload') return ['certificates', () => views.certificateUpload(root)];
    if (b) return ['certificates', () => views.certificateDetail(root, b)];
    return ['certificates', () => views.certificates(root)];
  }
  return ['overview', () => views.overview(root)];
}

let renderSeq = 0;

// Shows the view of hash: a changed hash renders once, through hashchange; the
// same hash renders now (no hashchange fires). Never both, which would run
// the view's requests twice.
function go(hash) {
  if (location.hash.replace(/^#/, '') === hash.replace(/^#/, '')) render();
  else location.hash = hash;
}

function render() {
  const main = $('main');
  const c = session.get();
  // A fresh root per render: a slow view of an earlier route writes into a detached node.
  const root = h('div', { class: 'view' });
  main.replaceChildren(root);
  $('nav').hidden = !c;
  $('sign-out').hidden = !c;
  $('service-host').textContent = c ? c.host : '';
  if (!c) {
    views.signin(root);
    return;
  }
  const [section, view] = routeOf(location.hash, root);
  for (const a of document.querySelectorAll('#nav a')) {
    if (a.dataset.nav === section) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  const seq = ++renderSeq;
  main.setAttribute('aria-busy', 'true');
  Promise.resolve(view()).catch((e) => {
    if (seq !== renderSeq) return;
    if (e instanceof ApiError && e.status === 401) {
      session.clear();
      root.replaceChildren();
      views.signin(root, 'The server no longer accepts this key. Sign in again.');
    } else root.append(errorBox(e));
  }).finally(() => {
    if (seq === renderSeq) main.setAttribute('aria-busy', 'false');
  });
}

window.addEventListener('hashchange', () => {
  render();
  $('main').focus({ preventScroll: true });
});
window.addEventListener('DOMContentLoaded', () => {
  // A link to the view already shown reloads it (no hashchange fires).
  document.addEventListener('click', (ev) => {
    const a = ev.target.closest && ev.target.closest('a[href^="#"]');
    if (a && a.getAttribute('href') === location.hash && !ev.ctrlKey && !ev.metaKey) render();
  });
  $('sign-out').addEventListener('click', () => {
    session.clear();
    go('');
  });
  render();
});
