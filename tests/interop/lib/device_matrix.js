// SPDX-License-Identifier: MIT
// The device matrix shared by the device SDK interop tests (one per
// transport): a test PKI, the enrollments, the positive cases (a group via
// the root with an intermediate-issued device, a group via an intermediate,
// individual X.509, a derived symmetric key, an individual key) and every
// refusal, plus the attempt-history lookup the assertions use.
'use strict';

const assert = require('node:assert');
const { execFileSync } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');

const { dpsctl, serviceCall } = require('./dpsd');

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

module.exports = { HUBS, makePki, put, x509Group, derive, attemptOf, setupMatrix };
