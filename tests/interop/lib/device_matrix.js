// SPDX-License-Identifier: MIT
// The device matrix shared by the device SDK interop tests (one per
// transport): a test PKI, the enrollments, the positive cases (a group via
// the root with an intermediate-issued device, a group via an intermediate,
// individual X.509, a derived symmetric key, an individual key) and every
// refusal, the attempt-history lookup the assertions use, and runMatrix(),
// which runs it all against a fresh dpsd and checks what every transport
// answers alike.
'use strict';

const assert = require('node:assert');
const { execFileSync } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');

const { dpsctl, runChild, serviceCall, startDpsd } = require('./dpsd');

const HUBS = ['hub-a.example.net', 'hub-b.example.net'];

/* A test PKI under dir with dpsctl cert, plus what dpsctl refuses to make (an upper-case CN). */
function makePki(dir) {
  fs.mkdirSync(dir, { recursive: true });
  const p = (name) => path.join(dir, name);
  const cert = (...args) => dpsctl(['cert', ...args]);
  const device = (name, ca, ...extra) => {
    cert('create-device', '--ca', p(ca), '--registration-id', name, '--out', p(name), ...extra);
    return { cert: p(`${name}.chain.pem`), key: p(`${name}.key`) };
  };
  cert('create-root', '--subject', 'CN=Node Device Root', '--out', p('root'));
  cert('create-intermediate', '--ca', p('root'), '--subject', 'CN=Node Device Inter', '--out', p('inter'));
  cert('create-root', '--subject', 'CN=Node Second Root', '--out', p('root2'));
  cert('create-intermediate', '--ca', p('root2'), '--subject', 'CN=Node Enrolled Inter', '--out', p('inter2'));
  cert('create-root', '--subject', 'CN=Node Lonely Root', '--out', p('lonely'));
  cert('create-root', '--subject', 'CN=Node Stranger Root', '--out', p('stranger'));
  cert('create-root', '--subject', 'CN=Node Disabled Root', '--out', p('offroot'));
  // The forgery: the real root's and intermediate's names on other keys.
  cert('create-root', '--subject', 'CN=Node Device Root', '--out', p('fake-root'));
  cert('create-intermediate', '--ca', p('fake-root'), '--subject', 'CN=Node Device Inter', '--out',
    p('fake-inter'));

  const devices = {
    'node-x509-root': device('node-x509-root', 'inter'),
    'node-x509-inter': device('node-x509-inter', 'inter2'),
    'node-x509-ind': device('node-x509-ind', 'lonely'),
    'node-unknown': device('node-unknown', 'stranger'),
    'node-expired': device('node-expired', 'inter', '--not-before', '2020-01-01', '--not-after',
      '2020-06-30'),
    'node-future': device('node-future', 'inter', '--not-before', '2099-01-01'),
    'node-forged': device('node-forged', 'fake-inter'),
    'node-cn-a': device('node-cn-a', 'inter'),
    'node-disabled': device('node-disabled', 'offroot'),
    'node-blocked': device('node-blocked', 'inter'),
  };
  // Upper case in the CN with the openssl command.
  const ossl = (...args) => execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  fs.writeFileSync(p('upper.ext'), 'basicConstraints=critical,CA:FALSE\n' +
    'keyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n');
  ossl('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', p('upper.key'));
  ossl('req', '-new', '-key', p('upper.key'), '-subj', '/CN=Node-Upper', '-out', p('upper.csr'));
  ossl('x509', '-req', '-in', p('upper.csr'), '-CA', p('inter.pem'), '-CAkey', p('inter.key'),
    '-days', '30', '-extfile', p('upper.ext'), '-out', p('upper.pem'));
  fs.writeFileSync(p('upper.chain.pem'), fs.readFileSync(p('upper.pem'), 'utf8') +
    fs.readFileSync(p('inter.chain.pem'), 'utf8'));
  devices['Node-Upper'] = { cert: p('upper.chain.pem'), key: p('upper.key') };
  return { p, devices };
}

async function put(d, urlPath, body) {
  const r = await serviceCall(d, 'PUT', urlPath, body);
  assert.ok(r.status === 200 || r.status === 201, `${urlPath}: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
}

function x509Group(id, pem, status = 'enabled') {
  return { enrollmentGroupId: id, provisioningStatus: status, attestation: { type: 'x509',
    x509: { signingCertificates: { primary: { certificate: pem } } } } };
}

function derive(groupKey, id) {
  return crypto.createHmac('sha256', Buffer.from(groupKey, 'base64')).update(id).digest('base64');
}

/*
 * The attempt of a registration with the given tracking id (the newest when
 * none is given) and its trace as one text.
 */
async function attemptOf(d, id, trackingId) {
  const r = await serviceCall(d, 'GET', `/registrations/${encodeURIComponent(id)}/attempts`);
  assert.strictEqual(r.status, 200, JSON.stringify(r.body));
  assert.ok(Array.isArray(r.body) && r.body.length > 0, `no attempt recorded for ${id}`);
  const a = trackingId ? r.body.find((x) => x.trackingId === trackingId) : r.body[0];
  assert.ok(a, `no attempt of ${id} has tracking id ${trackingId}: ${JSON.stringify(r.body)}`);
  return { a, why: `${a.trace.summary}\n${a.trace.steps.join('\n')}` };
}

/*
 * Makes the PKI under dir, enrolls everything in the dpsd d and returns the
 * cases for lib/device_scenario.js; each transport's test starts its own dpsd.
 */
async function setupMatrix(d, dir) {
    const { p, devices } = makePki(dir);
    const pem = (name) => fs.readFileSync(p(`${name}.pem`), 'utf8');
    const groupKey = crypto.randomBytes(64).toString('base64');
    const indKey = crypto.randomBytes(32).toString('base64');

    await put(d, '/enrollmentGroups/root-group', x509Group('root-group', pem('root')));
    await put(d, '/enrollmentGroups/inter-group', x509Group('inter-group', pem('inter2')));
    await put(d, '/enrollmentGroups/off-group', x509Group('off-group', pem('offroot'), 'disabled'));
    await put(d, '/enrollments/node-x509-ind', { registrationId: 'node-x509-ind',
      deviceId: 'node-x509-device', attestation: { type: 'x509', x509: { clientCertificates: {
        primary: { certificate: pem('node-x509-ind') } } } } });
    await put(d, '/enrollments/node-blocked', { registrationId: 'node-blocked',
      provisioningStatus: 'disabled', attestation: { type: 'x509', x509: { clientCertificates: {
        primary: { certificate: pem('node-blocked') } } } } });
    await put(d, '/enrollmentGroups/sym-group', { enrollmentGroupId: 'sym-group', attestation: {
      type: 'symmetricKey', symmetricKey: { primaryKey: groupKey, secondaryKey: groupKey } } });
    await put(d, '/enrollments/node-sym-ind', { registrationId: 'node-sym-ind', attestation: {
      type: 'symmetricKey', symmetricKey: { primaryKey: indKey, secondaryKey: indKey } } });

    const x509 = (name, id = name) => ({ name, registrationId: id, ...devices[name] });
    const sym = (name, id, key, extra = {}) => ({ name, registrationId: id, symmetricKey: key,
      ...extra });
    const cases = [
      x509('node-x509-root'),
      x509('node-x509-inter'),
      x509('node-x509-ind'),
      sym('sym-derived', 'node-sym-dev', derive(groupKey, 'node-sym-dev')),
      sym('sym-individual', 'node-sym-ind', indKey),
      x509('node-unknown'),
      x509('node-expired'),
      x509('node-future'),
      x509('node-forged'),
      x509('node-cn-a', 'node-cn-b'),
      x509('Node-Upper'),
      x509('node-disabled'),
      x509('node-blocked'),
      sym('sym-wrong-key', 'node-sym-ind', crypto.randomBytes(32).toString('base64')),
      sym('sym-group-key', 'node-sym-gk', groupKey),
      sym('sym-expired-sas', 'node-sym-ind', indKey, { sasExpired: true }),
    ];
    return cases;
}

/* Asserts that the reason why holds every word (a string it includes, or a RegExp it matches). */
function assertWords(name, why, words) {
  for (const w of words) {
    if (w instanceof RegExp) assert.match(why, w, `${name}: ${why}`);
    else assert.ok(why.includes(w), `${name}: '${w}' not in:\n${why}`);
  }
}

/* The X.509 refusals every transport answers alike: case name, registration id, words of the reason. */
const X509_REFUSALS = [
  ['node-unknown', 'node-unknown', /not trusted|no enrollment|does not lead/],
  ['node-expired', 'node-expired', 'expired', '2020-06-30'],
  ['node-future', 'node-future', 'not yet valid', '2099-01-01'],
  ['node-forged', 'node-forged', 'root-group', /forged|different key/],
  ['node-cn-a', 'node-cn-b', "'node-cn-a'", "'node-cn-b'", 'differs'],
  // The upper-case CN: the registration id is refused before any enrollment is read.
  ['Node-Upper', 'Node-Upper', 'not a valid registration id'],
];

/*
 * Runs every case of the matrix with lib/device_scenario.js against a fresh
 * dpsd (named name) over transport (DPS_TRANSPORT; undefined: HTTPS) and
 * checks what every transport answers alike: the assignments, each seen by
 * the device, in the registration record and in the attempt history; the
 * X.509 refusals (the SDK's UnauthorizedError with dpsd's 401002 body, no
 * enrollment named to the device, the operator's reason under the same
 * tracking id); the disabled enrollments. Then it awaits more(m) for the
 * transport's own checks, with m = { d, outcome, show(name), refused(name,
 * id, ...words) }, and stops dpsd, asserting a clean exit.
 */
async function runMatrix(name, transport, more) {
  const d = await startDpsd(name, ['--linked-hub', HUBS[0], '--linked-hub', `${HUBS[1]},weight=2`]);
  let stopped = false;
  try {
    const cases = await setupMatrix(d, path.join(d.dir, 'pki'));
    const casesFile = path.join(d.dir, 'cases.json');
    fs.writeFileSync(casesFile, JSON.stringify(cases));
    const env = { NODE_EXTRA_CA_CERTS: d.ca, DPS_ID_SCOPE: d.idScope, DPS_CASES: casesFile };
    if (transport) env.DPS_TRANSPORT = transport;
    const r = await runChild(path.join(__dirname, 'device_scenario.js'), env);
    assert.strictEqual(r.code, 0, `device scenario failed:\n${r.stdout}\n${r.stderr}\n-- dpsd --\n${d.stderr()}`);
    const outcome = Object.fromEntries(JSON.parse(r.stdout).map((o) => [o.name, o]));
    const show = (n) => `${transport || 'https'}: ${JSON.stringify(outcome[n])}`;

    /* An assignment: the hub, the device id and the enrollment that decided it. */
    async function assigned(n, id, deviceId, group) {
      const o = outcome[n];
      assert.ok(o.ok, `${n}: ${show(n)}`);
      assert.strictEqual(o.result.registrationId, id, show(n));
      assert.strictEqual(o.result.deviceId, deviceId, show(n));
      assert.ok(HUBS.includes(o.result.assignedHub), show(n));
      const rec = await serviceCall(d, 'GET', `/registrations/${id}`);
      assert.strictEqual(rec.status, 200, JSON.stringify(rec.body));
      assert.strictEqual(rec.body.assignedHub, o.result.assignedHub);
      assert.strictEqual(rec.body.enrollmentGroupId, group, JSON.stringify(rec.body));
      const { a } = await attemptOf(d, id);
      assert.strictEqual(a.status, 'assigned', JSON.stringify(a));
    }
    await assigned('node-x509-root', 'node-x509-root', 'node-x509-root', 'root-group');
    await assigned('node-x509-inter', 'node-x509-inter', 'node-x509-inter', 'inter-group');
    await assigned('node-x509-ind', 'node-x509-ind', 'node-x509-device', undefined);
    await assigned('sym-derived', 'node-sym-dev', 'node-sym-dev', 'sym-group');
    // node-sym-ind's last attempt is a refusal: check its assignment by the SDK's answer.
    assert.ok(outcome['sym-individual'].ok, show('sym-individual'));
    assert.strictEqual(outcome['sym-individual'].result.deviceId, 'node-sym-ind');

    /* A refusal the device got as a 401002 body: the SDK's UnauthorizedError. */
    async function refused(n, id, ...words) {
      const o = outcome[n];
      assert.ok(!o.ok, `${n} should fail: ${show(n)}`);
      assert.strictEqual(o.error.name, 'UnauthorizedError', show(n));
      assert.strictEqual(o.error.body.errorCode, 401002, show(n));
      assert.doesNotMatch(o.error.body.message, /root-group|inter-group|sym-group|Node .* Root/, show(n));
      const { a, why } = await attemptOf(d, id, o.error.body.trackingId);
      assert.strictEqual(a.status, 'unauthorized', JSON.stringify(a));
      assertWords(n, why, words);
    }
    for (const [n, id, ...words] of X509_REFUSALS) await refused(n, id, ...words);

    /* A disabled enrollment: status "disabled", which the SDK reports as an unknown status. */
    async function disabled(n, id, ...words) {
      const o = outcome[n];
      assert.ok(!o.ok, `${n} should fail: ${show(n)}`);
      assert.match(o.error.message, /disabled/, show(n));
      const { a, why } = await attemptOf(d, id);
      assert.strictEqual(a.status, 'disabled', JSON.stringify(a));
      assertWords(n, why, words);
    }
    await disabled('node-disabled', 'node-disabled', "enrollment group 'off-group'", 'disabled');
    await disabled('node-blocked', 'node-blocked', "individual enrollment 'node-blocked'", 'disabled');

    await more({ d, outcome, show, refused });

    const status = await d.stop();
    stopped = true;
    assert.deepStrictEqual(status, { code: 0, signal: null }, d.stderr());
    fs.rmSync(d.dir, { recursive: true, force: true });
  } finally {
    if (!stopped) await d.stop();
  }
}

module.exports = {
  HUBS, X509_REFUSALS, makePki, put, x509Group, derive, attemptOf, assertWords, setupMatrix, runMatrix,
};
