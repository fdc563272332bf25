// SPDX-License-Identifier: MIT
// The portal in Debian's headless Chromium, driven by playwright-core, against a
// real dpsd on 127.0.0.1:443: sign-in (and a wrong key refused), a group made
// through the API listed and deleted from the UI, a group made from the UI by
// uploading a PEM with its thumbprint shown, the registration and certificate
// views, a device registered against a group made in the UI shown under
// Registration records, a refused device's reason in the attempt history and
// among the overview's recent failed attempts, and
// the security headers, the portal used with the keyboard alone, and no
// request of the page to another host than dpsd. Screenshots of each view go to
// $DPS_BUILD_DIR/screenshots/.
//
// The browser context sets ignoreHTTPSErrors: dpsd's development CA is not in
// Chromium's trust store, and importing it would need NSS tools. The Node side
// of the test does verify the server certificate against that CA.
'use strict';

const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { test, before, after, afterEach } = require('node:test');
const { chromium } = require('playwright-core');
const {
  startDpsd, stopDpsd, request, makeRoot, makeDevice, makeProof, registerDevice, sha256Thumbprint, parseConnectionString,
} = require('./lib/dpsd');

const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const PORTAL = 'https://localhost/portal/';
const HUB = 'hub-portal.example.net';
const CA_UPLOAD = '#/certificates/+upload';
const SHOTS = path.join(process.env.DPS_BUILD_DIR || '.', 'screenshots');

let dpsd;
let browser;
let context;
let page;
const failedRequests = [];

async function shot(name, p = page) {
  await p.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
}

// Opens a view of the portal by its hash, loading the page afresh (sessionStorage stays).
async function open(hash, p = page) {
  await p.goto('about:blank');
  await p.goto(`${PORTAL}${hash}`);
}

async function signIn(p, cs) {
  await p.goto(PORTAL);
  await p.fill('#connection-string', cs);
  await p.click('#sign-in');
}

before(async () => {
  assert.ok(fs.existsSync(CHROMIUM), `${CHROMIUM} is missing: run 'make deps' (apt-get install chromium)`);
  fs.mkdirSync(path.join(SHOTS, 'last'), { recursive: true });
  dpsd = await startDpsd('portal', ['--linked-hub', HUB]);
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--disable-quic'],
  });
  context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 860 },
    permissions: ['clipboard-read', 'clipboard-write'] });
  page = await context.newPage();
  page.setDefaultTimeout(15000);
  // A request of the page that fails at the network level fails the test, with its reason.
  // Aborted ones are not failures: a navigation cancels the requests of the page it leaves.
  page.on('requestfailed', (r) => {
    const why = (r.failure() || {}).errorText;
    if (why !== 'net::ERR_ABORTED') failedRequests.push(`${r.method()} ${r.url()}: ${why}`);
  });
  // Air-gapped: every request of the page goes to dpsd itself, never to a CDN or another host.
  page.on('request', (r) => {
    const u = new URL(r.url());
    if (!['data:', 'blob:', 'about:'].includes(u.protocol) && u.host !== 'localhost') {
      failedRequests.push(`${r.method()} ${r.url()}: a request to another host than dpsd`);
    }
  });
  page.on('console', (m) => { if (m.type() === 'error') console.error(`# console error: ${m.text()}`); });
  page.on('pageerror', (e) => { throw e; });
});

// The last state of every test, to look at when one fails.
afterEach(async (t) => {
  if (page && !page.isClosed()) await page.screenshot({ path: path.join(SHOTS, 'last', `${t.name.replace(/[^\w]+/g, '-')}.png`) }).catch(() => {});
  const failed = failedRequests.splice(0);
  assert.deepEqual(failed, [], 'requests of the page that failed');
});

after(async () => {
  if (browser) await browser.close();
  const code = await stopDpsd(dpsd);
  assert.equal(code, 0, 'dpsd exits cleanly on SIGTERM');
});

test('portal files carry a strict CSP, nosniff and their content types; unknown files are 404', async () => {
  for (const [p, type] of [['/portal', 'text/html'], ['/portal/', 'text/html'], ['/portal/app.js', 'text/javascript'],
    ['/portal/app.css', 'text/css']]) {
    const r = await request(dpsd, 'GET', p, { noAuth: true });
    assert.equal(r.status, 200, p);
    assert.match(r.headers['content-type'], new RegExp(`^${type}`), p);
    assert.match(r.headers['content-security-policy'], /default-src 'none'; script-src 'self'/, p);
    assert.equal(r.headers['x-content-type-options'], 'nosniff', p);
    assert.equal(r.headers['cache-control'], 'no-cache', p);
  }
  for (const p of ['/portal/nope.js', '/portal/%2e%2e/portal_assets.h', '/portal/app.js/x']) {
    const r = await request(dpsd, 'GET', p, { noAuth: true });
    assert.equal(r.status, 404, p);
  }
});

test('GET /service/info needs a SAS token and answers the ID scope', async () => {
  const anon = await request(dpsd, 'GET', '/service/info', { noAuth: true });
  assert.equal(anon.status, 401);
  const r = await request(dpsd, 'GET', '/service/info');
  assert.equal(r.status, 200);
  assert.equal(r.body.idScope, dpsd.idScope);
  assert.equal(r.body.serviceEndpoint, 'https://localhost');
  assert.deepEqual(r.body.linkedHubs, [{ host: HUB, weight: 1 }]);
});

test('a wrong key is refused with a clear message', async () => {
  const c = parseConnectionString(dpsd.connectionString);
  const wrong = `HostName=${c.host};SharedAccessKeyName=${c.policy};SharedAccessKey=${Buffer.alloc(32, 7).toString('base64')}`;
  await signIn(page, wrong);
  const err = page.locator('#signin-error');
  await err.waitFor({ state: 'visible' });
  assert.match(await err.textContent(), /Wrong key or policy: the server refused the signature of policy 'provisioningserviceowner'/);
  assert.equal(await page.evaluate(() => sessionStorage.length), 0, 'a refused key is not kept');
  await page.fill('#connection-string', 'HostName=localhost;SharedAccessKeyName=x;SharedAccessKey=not base64!');
  await page.click('#sign-in');
  assert.match(await err.textContent(), /the key is not valid base64/);
  await shot('signin-refused');
});

test('sign in with the connection string; the overview shows the ID scope', async () => {
  const keyUsed = [];
  page.on('request', (req) => {
    const all = `${req.url()} ${JSON.stringify(req.headers())} ${req.postData() || ''}`;
    if (all.includes(parseConnectionString(dpsd.connectionString).key)) keyUsed.push(req.url());
  });
  await signIn(page, dpsd.connectionString);
  await page.locator('#nav').waitFor({ state: 'visible' });
  await page.locator('#id-scope').waitFor();
  assert.equal(await page.textContent('#id-scope'), dpsd.idScope);
  await page.locator('text=Enrollment groups').first().waitFor();
  await page.waitForFunction(() => !document.querySelector('main .view dd') ||
    ![...document.querySelectorAll('main .view dd')].some((d) => d.textContent === '…'));
  await shot('overview');
  assert.deepEqual(keyUsed, [], 'the key itself is never sent');
});

test('a group created through the API appears under Enrollment groups and is deleted from the UI', async () => {
  const put = await request(dpsd, 'PUT', '/enrollmentGroups/api-group', {
    body: { enrollmentGroupId: 'api-group', attestation: { type: 'symmetricKey' }, allocationPolicy: 'hashed' },
  });
  assert.equal(put.status, 200, JSON.stringify(put.body));

  await page.click('#nav a[data-nav="enrollments"]');
  await page.locator('#tab-groups[aria-selected="true"]').waitFor();
  const row = page.locator('tr', { has: page.locator('a', { hasText: 'api-group' }) });
  await row.waitFor();
  assert.match(await row.textContent(), /Symmetric key/);
  await shot('enrollment-groups');

  await page.click('button[data-delete="api-group"]');
  const dialog = page.locator('dialog#confirm');
  await dialog.waitFor({ state: 'visible' });
  assert.match(await dialog.textContent(), /Delete enrollment group 'api-group'\?/);
  await shot('delete-confirmation');
  await page.click('#confirm-ok');
  await row.waitFor({ state: 'detached' });

  const get = await request(dpsd, 'GET', '/enrollmentGroups/api-group');
  assert.equal(get.status, 404);
});

test('cancel in the confirmation keeps the group', async () => {
  await request(dpsd, 'PUT', '/enrollmentGroups/kept-group', { body: { enrollmentGroupId: 'kept-group', attestation: { type: 'symmetricKey' } } });
  await open(`#/enrollments/groups`);
  await page.locator('button[data-delete="kept-group"]').click();
  await page.locator('dialog#confirm').waitFor({ state: 'visible' });
  await page.keyboard.press('Escape');
  await page.locator('dialog#confirm').waitFor({ state: 'hidden' });
  assert.equal((await request(dpsd, 'GET', '/enrollmentGroups/kept-group')).status, 200);
});

test('a group created from the UI by uploading a PEM shows its computed thumbprint', async () => {
  const pem = makeRoot(dpsd, 'portal-root', 'CN=Portal Test Root,O=dpsd tests');
  const thumb = sha256Thumbprint(pem);

  await open(`#/enrollments/groups`);
  await page.click('#add-enrollment');
  await page.fill('#f-id', 'ui-group');
  await page.setInputFiles('#f-cert1-file', pem);
  const preview = page.locator('#f-cert1-preview code[data-field="sha256"]');
  await preview.waitFor();
  assert.equal(await preview.textContent(), thumb, 'the thumbprint computed in the browser');
  await page.fill('#f-twin', '{"tags": {"line": "3"}}');
  await shot('enrollment-group-create');
  await page.click('#f-save');

  await page.waitForURL(/#\/enrollments\/groups\/ui-group$/);
  const shown = page.locator('code[data-field="sha256"]').first();
  await shown.waitFor();
  assert.equal(await shown.textContent(), thumb, 'the thumbprint the server computed');
  assert.match(await page.textContent('main'), /Subject.*CN=Portal Test Root/);
  await shot('enrollment-group-detail');

  const get = await request(dpsd, 'GET', '/enrollmentGroups/ui-group');
  assert.equal(get.status, 200);
  assert.equal(get.body.attestation.x509.signingCertificates.primary.info.sha256Thumbprint, thumb);
  assert.deepEqual(get.body.initialTwin.tags, { line: '3' });

  // Disable it from the detail page.
  await page.click('#toggle-status');
  await page.locator('h1 .badge.disabled').waitFor();
  assert.equal((await request(dpsd, 'GET', '/enrollmentGroups/ui-group')).body.provisioningStatus, 'disabled');
});

test('a bad certificate is refused in the form with a message', async () => {
  await open(`#/enrollments/groups/new`);
  await page.fill('#f-id', 'bad-cert');
  await page.fill('#f-cert1', '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n');
  await page.click('#f-save');
  const err = page.locator('#form-error');
  await err.waitFor({ state: 'visible' });
  assert.match(await err.textContent(), /certificate/i);
  assert.equal((await request(dpsd, 'GET', '/enrollmentGroups/bad-cert')).status, 404);
});

test('an individual enrollment is created from the UI with a symmetric key', async () => {
  await open(`#/enrollments/individual`);
  await page.locator('#tab-individual[aria-selected="true"]').waitFor();
  await page.click('#add-enrollment');
  await page.fill('#f-id', 'device-7');
  await page.selectOption('#f-att', 'symmetricKey');
  await page.click('#f-save');
  await page.waitForURL(/#\/enrollments\/individual\/device-7$/);
  await page.getByRole('button', { name: 'Show keys' }).click();
  await page.locator('text=Primary key').waitFor();
  await open(`#/enrollments/individual`);
  await page.locator('a', { hasText: 'device-7' }).waitFor();
  await shot('individual-enrollments');
  assert.equal((await request(dpsd, 'GET', '/enrollments/device-7')).status, 200);
});

test('registration records and certificates views render, or say what this server lacks', async () => {
  await open(`#/registrations/group/ui-group`);
  await page.locator('text=No device has registered through this group yet.').or(page.locator('.note')).first().waitFor();
  await shot('registrations-group');

  await open(`#/registrations/device/no-such-device`);
  await page.locator('text=No registration record for').waitFor();
  await page.locator('#reg-hist ~ *').first().waitFor();
  await shot('registrations-device');

  await open(`#/certificates`);
  await page.locator('main h1', { hasText: 'CA certificates' }).waitFor();
  await page.locator('.note, table').first().waitFor();
  await shot('certificates-empty');
});

test('a device registered against a group made in the UI appears under Registration records', async () => {
  const pem = makeRoot(dpsd, 'line-root', 'CN=Portal Line Root');
  await open(`#/enrollments/groups`);
  await page.click('#add-enrollment');
  await page.fill('#f-id', 'line-group');
  await page.setInputFiles('#f-cert1-file', pem);
  await page.locator('#f-cert1-preview code[data-field="sha256"]').waitFor();
  await page.click('#f-save');
  await page.waitForURL(/#\/enrollments\/groups\/line-group$/);

  const reg = registerDevice(dpsd, 'line-dev-1', makeDevice(dpsd, 'line-root', 'line-dev-1'));
  assert.equal(reg.status, 0, reg.stderr);
  assert.equal(JSON.parse(reg.stdout).registrationState.assignedHub, HUB);

  await open(`#/registrations`);
  await page.fill('#r-group', 'line-group');
  await page.getByRole('button', { name: 'Show records' }).click();
  await page.waitForURL(/#\/registrations\/group\/line-group$/);
  const row = page.locator('tr', { has: page.locator('a', { hasText: 'line-dev-1' }) });
  await row.waitFor();
  assert.match(await row.textContent(), new RegExp(`assigned.*${HUB.replace(/\./g, '\\.')}`));
  await shot('registrations-group-device');

  await row.locator('a', { hasText: 'line-dev-1' }).click();
  await page.waitForURL(/#\/registrations\/device\/line-dev-1$/);
  const [attempt] = (await request(dpsd, 'GET', '/registrations/line-dev-1/attempts')).body;
  const item = page.locator('li.attempt').first();
  await item.waitFor();
  assert.match(await item.textContent(), /assigned/);
  assert.match(await item.textContent(), /enrollment group line-group/);
  assert.equal(await item.locator('[data-field="reason"]').textContent(), attempt.trace.summary);
  assert.match(attempt.trace.summary, new RegExp(`hub '${HUB.replace(/\./g, '\\.')}' as device 'line-dev-1'`));
  assert.equal(await item.locator('time').getAttribute('datetime'), attempt.timeUtc);
  assert.match(await item.textContent(), new RegExp(attempt.trackingId));
  await shot('registration-device-assigned');
});

test("a refused device's reason is shown in its attempt history", async () => {
  makeRoot(dpsd, 'stray-root', 'CN=Portal Stray Root');
  const reg = registerDevice(dpsd, 'stray-dev-1', makeDevice(dpsd, 'stray-root', 'stray-dev-1'));
  assert.notEqual(reg.status, 0, 'a device under an unknown CA is refused');
  const [attempt] = (await request(dpsd, 'GET', '/registrations/stray-dev-1/attempts')).body;
  assert.equal(attempt.status, 'unauthorized');
  assert.match(reg.stderr, new RegExp(attempt.trackingId), 'the device saw the tracking id');

  await open(`#/registrations/device/stray-dev-1`);
  await page.locator('text=No registration record for').waitFor();
  const item = page.locator('li.attempt.failed').first();
  await item.waitFor();
  assert.match(await item.locator('.badge').textContent(), /unauthorized/);
  assert.equal(await item.locator('[data-field="reason"]').textContent(), `401002: ${attempt.trace.summary}`);
  assert.match(await item.locator('[data-field="device-message"]').textContent(), new RegExp(attempt.trace.deviceMessage));
  assert.equal(await item.getAttribute('data-tracking-id'), attempt.trackingId);
  assert.ok(await item.locator('details').evaluate((el) => el.open), 'the trace of a failure is open');
  for (const step of attempt.trace.steps) assert.ok((await item.locator('ol.trace').textContent()).includes(step), step);
  await shot('registration-device-refused');

  // The device has no registration record, only its attempt: the overview lists it with its reason.
  await open('#/overview');
  const row = page.locator('section[aria-labelledby="ov-failed"] tbody tr', { hasText: 'stray-dev-1' }).first();
  await row.waitFor();
  assert.equal(await row.locator('[data-field="reason"]').textContent(), attempt.trace.summary);
  assert.equal(await row.locator('[data-field="reason"]').getAttribute('data-tracking-id'), attempt.trackingId);
  assert.match(await row.locator('.badge').textContent(), /unauthorized/);
  assert.match(await row.textContent(), /401002/);
  const newest = (await request(dpsd, 'GET', '/attempts?failed=true')).body[0];
  assert.equal(newest.attemptId, attempt.attemptId, 'the refusal is the newest failure');
  assert.match(await page.locator('section[aria-labelledby="ov-failed"] tbody tr').first().textContent(), /stray-dev-1/);
  await shot('overview-failed');
  await row.locator('a', { hasText: 'stray-dev-1' }).click();
  await page.locator('li.attempt.failed').first().waitFor();
  assert.match(page.url(), /#\/registrations\/device\/stray-dev-1$/);
});

test('a CA uploaded in the UI is verified with the proof of the code shown; a wrong proof gets the server\'s reason', async () => {
  const pem = makeRoot(dpsd, 'ui-ca-root', 'CN=Portal CA Root,O=dpsd tests');
  const thumb = sha256Thumbprint(pem);
  await open('#/certificates');
  await page.click('#add-certificate');
  await page.fill('#c-name', 'ui-ca-root');
  await page.setInputFiles('#c-cert-file', pem);
  assert.equal(await page.locator('#c-cert-preview code[data-field="sha256"]').textContent(), thumb);
  await shot('certificate-upload');
  await page.click('#c-upload');
  await page.waitForURL(/#\/certificates\/ui-ca-root$/);
  assert.equal(await page.locator('code[data-field="sha256"]').textContent(), thumb, 'the thumbprint the server computed');
  assert.equal(await page.locator('h1 [data-field="verified"]').textContent(), 'not verified');
  assert.equal((await request(dpsd, 'GET', '/certificates/ui-ca-root')).body.properties.isVerified, false);

  await page.click('#c-gen');
  const codeIn = page.locator('#c-code');
  await codeIn.waitFor();
  const code = await codeIn.inputValue();
  assert.match(code, /^[0-9A-F]{64}$/);
  assert.equal(await page.evaluate(() => document.activeElement.id), 'c-code', 'focus moves to the new code');
  await page.locator('button[aria-label="Copy the verification code"]').click();
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), code, 'Copy puts the code on the clipboard');
  await page.fill('#c-prefix', 'pki/ui-ca-root');
  assert.equal(await page.textContent('#c-cmd-create'), `dpsctl cert create-verification --ca pki/ui-ca-root --code ${code} --out pki/ui-ca-root-proof`);
  assert.equal(await page.textContent('#c-cmd-prove'), 'dpsctl ca prove --name ui-ca-root --ca pki/ui-ca-root');
  await shot('certificate-code');

  // A proof signed by another CA's key: the server's reason, word for word.
  makeRoot(dpsd, 'ui-ca-other', 'CN=Portal Other Root');
  const wrong = makeProof(dpsd, 'ui-ca-other', code, 'ui-ca-wrong-proof');
  const refusal = await request(dpsd, 'POST', '/certificates/ui-ca-root/verify', { body: { certificate: fs.readFileSync(wrong, 'utf8') } });
  assert.equal(refusal.status, 400);
  await page.setInputFiles('#c-proof-file', wrong);
  await page.click('#c-verify');
  const reason = page.locator('#c-verify-result [data-field="reason"]');
  await reason.waitFor();
  assert.ok((await reason.textContent()).includes(refusal.body.message), await reason.textContent());
  assert.match(await reason.textContent(), /not signed by the private key of the CA '.*CN=Portal CA Root/);
  assert.equal(await page.evaluate(() => document.activeElement.id), 'c-verify-result', 'focus moves to the result');
  await shot('certificate-verify-refused');

  const good = makeProof(dpsd, 'ui-ca-root', code, 'ui-ca-proof');
  await page.setInputFiles('#c-proof-file', good);
  await page.click('#c-verify');
  await page.locator('#c-verify-result.success').waitFor();
  assert.equal(await page.locator('h1 [data-field="verified"]').textContent(), 'verified');
  const got = await request(dpsd, 'GET', '/certificates/ui-ca-root');
  assert.equal(got.body.properties.isVerified, true, 'the API agrees');
  await shot('certificate-verified');

  await open('#/certificates');
  const row = page.locator('tr', { has: page.locator('a', { hasText: 'ui-ca-root' }) });
  await row.waitFor();
  assert.match(await row.textContent(), /CN=Portal CA Root.*verified/);
  assert.ok((await row.textContent()).includes(got.body.properties.thumbprint), 'the SHA-1 thumbprint');
  await shot('certificates');
});

test('a group created in the UI by CA reference accepts a device under the verified CA', async () => {
  await open('#/enrollments/groups/new');
  await page.fill('#f-id', 'ca-ref-group');
  await page.selectOption('#f-att', 'x509ca');
  await page.selectOption('#f-ca1', 'ui-ca-root');
  assert.match(await page.textContent('#f-ca-note'), /accepted while it stays verified/);
  await shot('enrollment-group-ca-reference');
  await page.click('#f-save');
  await page.waitForURL(/#\/enrollments\/groups\/ca-ref-group$/);
  await page.locator('[data-ca="ui-ca-root"] [data-field="verified"]').waitFor();
  const get = await request(dpsd, 'GET', '/enrollmentGroups/ca-ref-group');
  assert.equal(get.status, 200);
  assert.deepEqual(get.body.attestation.x509.caReferences, { primary: 'ui-ca-root' });

  const reg = registerDevice(dpsd, 'ca-ref-dev-1', makeDevice(dpsd, 'ui-ca-root', 'ca-ref-dev-1'));
  assert.equal(reg.status, 0, reg.stderr);
  assert.equal(JSON.parse(reg.stdout).registrationState.assignedHub, HUB);

  // Editing keeps the reference.
  await open('#/enrollments/groups/ca-ref-group/edit');
  assert.equal(await page.inputValue('#f-ca1'), 'ui-ca-root');
  await page.selectOption('#f-status', 'disabled');
  await page.click('#f-save');
  await page.locator('h1 .badge.disabled').waitFor();
  const edited = (await request(dpsd, 'GET', '/enrollmentGroups/ca-ref-group')).body;
  assert.deepEqual(edited.attestation.x509.caReferences, { primary: 'ui-ca-root' });
});

test('a CA certificate is deleted from the UI after a confirmation; cancel keeps it', async () => {
  const pem = fs.readFileSync(makeRoot(dpsd, 'doomed-root', 'CN=Portal Doomed Root'), 'utf8');
  for (const name of ['doomed-a', 'doomed-b']) {
    assert.equal((await request(dpsd, 'PUT', `/certificates/${name}`, { body: { certificate: pem } })).status, 200);
  }
  await open('#/certificates/doomed-a');
  await page.click('#c-delete');
  await page.locator('dialog#confirm').waitFor({ state: 'visible' });
  assert.equal(await page.evaluate(() => document.activeElement.id), 'confirm-cancel');
  await page.keyboard.press('Escape');
  await page.locator('dialog#confirm').waitFor({ state: 'hidden' });
  assert.equal(await page.evaluate(() => document.activeElement.id), 'c-delete', 'focus returns to Delete');
  assert.equal((await request(dpsd, 'GET', '/certificates/doomed-a')).status, 200);
  await page.click('#c-delete');
  await page.click('#confirm-ok');
  await page.waitForURL(/#\/certificates$/);
  assert.equal((await request(dpsd, 'GET', '/certificates/doomed-a')).status, 404);

  const row = page.locator('tr', { has: page.locator('a', { hasText: 'doomed-b' }) });
  await row.waitFor();
  await page.click('button[data-delete="doomed-b"]');
  await page.locator('dialog#confirm').waitFor({ state: 'visible' });
  assert.match(await page.textContent('#confirm-text'), /Delete CA certificate 'doomed-b'\?/);
  await shot('certificate-delete-confirmation');
  await page.click('#confirm-ok');
  await row.waitFor({ state: 'detached' });
  assert.equal((await request(dpsd, 'GET', '/certificates/doomed-b')).status, 404);
  assert.equal(await page.evaluate(() => document.activeElement.tagName), 'H1', 'focus goes to the heading');
});

test('a CA uploaded as verified is verified at once; a taken name and a device certificate are refused with the reason', async () => {
  const pem = makeRoot(dpsd, 'self-root', 'CN=Portal Self-attested Root');
  await open(CA_UPLOAD);
  await page.fill('#c-name', 'self-root');
  await page.setInputFiles('#c-cert-file', pem);
  await page.check('#c-verified');
  await page.click('#c-upload');
  await page.waitForURL(/#\/certificates\/self-root$/);
  assert.equal(await page.locator('h1 [data-field="verified"]').textContent(), 'verified');
  assert.match(await page.textContent('#c-proof-section'), /This CA is verified/);
  assert.equal((await request(dpsd, 'GET', '/certificates/self-root')).body.properties.isVerified, true);

  await open(CA_UPLOAD);
  await page.fill('#c-name', 'self-root');
  await page.setInputFiles('#c-cert-file', pem);
  await page.click('#c-upload');
  const err = page.locator('#c-error');
  await err.waitFor({ state: 'visible' });
  assert.match(await err.textContent(), /certificate 'self-root' exists already.*Delete 'self-root' first/);

  const device = makeDevice(dpsd, 'self-root', 'self-dev-1');
  await page.fill('#c-name', 'not-a-ca');
  await page.fill('#c-cert', fs.readFileSync(device.cert, 'utf8').split(/(?<=-----END CERTIFICATE-----)/)[0]);
  await page.click('#c-upload');
  await page.locator('#c-error', { hasText: 'not a CA certificate' }).waitFor();
  assert.equal((await request(dpsd, 'GET', '/certificates/not-a-ca')).status, 404);
});

test('the certificates views on a phone', async () => {
  await page.setViewportSize({ width: 390, height: 844 });
  await open('#/certificates');
  await page.locator('a', { hasText: 'ui-ca-root' }).waitFor();
  await shot('certificates-phone');
  await request(dpsd, 'PUT', '/certificates/phone-root', { body: { certificate: fs.readFileSync(path.join(dpsd.base, 'ui-ca-other.pem'), 'utf8') } });
  await open('#/certificates/phone-root');
  await page.click('#c-gen');
  await page.locator('#c-code').waitFor();
  await shot('certificate-detail-phone');
  await page.setViewportSize({ width: 1280, height: 860 });
});

test('the enrollment groups view on a phone', async () => {
  // The same tab: sessionStorage, and so the sign-in, belongs to one tab.
  await page.setViewportSize({ width: 390, height: 844 });
  await open('#/enrollments/groups');
  await page.locator('a', { hasText: 'ui-group' }).waitFor();
  // Each row is a card: its Delete button is on the screen, not scrolled off to the right.
  const del = await page.locator('button[data-delete="ui-group"]').boundingBox();
  assert.ok(del && del.x >= 0 && del.x + del.width <= 390, `Delete at ${JSON.stringify(del)}`);
  await shot('enrollment-groups-phone');
  await page.setViewportSize({ width: 1280, height: 860 });
});

test('sign out forgets the key', async () => {
  await open(`#/overview`);
  await page.click('#sign-out');
  await page.locator('#connection-string').waitFor();
  assert.equal(await page.evaluate(() => sessionStorage.length), 0);
});

/* Presses Tab until the focused element matches selector; fails after max presses. */
async function tabTo(selector, max = 200) {
  for (let i = 0; i < max; i++) {
    if (await page.evaluate((sel) => !!document.activeElement && document.activeElement.matches(sel), selector)) return;
    await page.keyboard.press('Tab');
  }
  assert.fail(`'${selector}' is not reachable with the Tab key`);
}

test('keyboard alone: sign in, the overview, find a group by id, page the list, open and cancel a deletion', async () => {
  for (let i = 0; i < 12; i++) {
    const id = `page-group-${String(i).padStart(2, '0')}`;
    const r = await request(dpsd, 'PUT', `/enrollmentGroups/${id}`, { body: { enrollmentGroupId: id, attestation: { type: 'symmetricKey' } } });
    assert.equal(r.status, 200, JSON.stringify(r.body));
  }
  // Signed out (the test before): the sign-in form, its fields labelled and the text area focused.
  await open('');
  await page.locator('#connection-string').waitFor();
  assert.equal(await page.evaluate(() => document.activeElement.id), 'connection-string');
  for (const id of ['connection-string', 'policy-name', 'policy-key']) {
    assert.equal(await page.locator(`label[for="${id}"]`).count(), 1, `a label for #${id}`);
  }
  await shot('signin');
  await page.keyboard.type(dpsd.connectionString);
  await tabTo('#sign-in');
  await page.keyboard.press('Enter');
  await page.locator('#id-scope').waitFor();
  await page.locator('section[aria-labelledby="ov-failed"] h2 ~ *').first().waitFor();

  await tabTo('#nav a[data-nav="enrollments"]');
  await page.keyboard.press('Enter');
  await page.locator('#tab-groups[aria-selected="true"]').waitFor();
  await tabTo('#search');
  await page.keyboard.type('no-such-group');
  await page.keyboard.press('Enter');
  await page.locator('[role="alert"]', { hasText: "No enrollment group with id 'no-such-group'." }).waitFor();
  await page.keyboard.press('Control+A');
  await page.keyboard.type('kept-group');
  await page.keyboard.press('Enter');
  await page.waitForURL(/#\/enrollments\/groups\/kept-group$/);
  await page.locator('main h1', { hasText: 'kept-group' }).waitFor();

  // Paged: 10 a page, Next and Previous by keyboard.
  await open('#/enrollments/groups');
  await page.locator('a', { hasText: 'kept-group' }).waitFor();
  await page.selectOption('#page-size', '10');
  await page.locator('text=Page 1').waitFor();
  // "Page 1" was already on screen from the larger page: wait for the list to be redrawn.
  await page.waitForFunction(() => document.querySelectorAll('tbody tr').length === 10);
  assert.equal(await page.locator('tbody tr').count(), 10);
  await page.locator('#page-next:not([disabled])').waitFor();
  await page.focus('#page-size');
  await tabTo('#page-next');
  await page.keyboard.press('Enter');
  await page.locator('text=Page 2').waitFor();
  await page.locator('#page-prev:not([disabled])').waitFor();
  await page.focus('#page-prev');
  await page.keyboard.press('Enter');
  await page.locator('text=Page 1').waitFor();

  // The confirmation dialog: opened with Enter, focus on Cancel, closed with Escape.
  await open('#/enrollments/groups');
  await page.selectOption('#page-size', '100');
  await page.locator('button[data-delete="kept-group"]').waitFor();
  await page.focus('#search');
  await tabTo('button[data-delete="kept-group"]');
  await page.keyboard.press('Enter');
  await page.locator('dialog#confirm').waitFor({ state: 'visible' });
  assert.equal(await page.evaluate(() => document.activeElement.id), 'confirm-cancel');
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement.id), 'confirm-ok');
  await page.keyboard.press('Escape');
  await page.locator('dialog#confirm').waitFor({ state: 'hidden' });
  assert.equal((await request(dpsd, 'GET', '/enrollmentGroups/kept-group')).status, 200);
});
