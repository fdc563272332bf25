// SPDX-License-Identifier: MIT
// The service scenario run by service.test.js in a child process (it needs
// NODE_EXTRA_CA_CERTS at start-up). Environment: DPS_CONNECTION_STRING,
// DPS_PKI (folder with inter.pem, root.pem, interop-x509.pem), DPS_ID_SCOPE
// and DPS_CA (dpsd's ID scope and TLS root, for a device registered with
// dpsctl). Prints one line per step; exits non-zero on the first failure.
'use strict';

const assert = require('node:assert');
const fs = require('node:fs');
const path = require('node:path');
const { ProvisioningServiceClient } = require('azure-iot-provisioning-service');
const { dpsctl } = require('./dpsd');

const cs = process.env.DPS_CONNECTION_STRING;
const pki = process.env.DPS_PKI;
const client = ProvisioningServiceClient.fromConnectionString(cs);

function pem(name) {
  return fs.readFileSync(path.join(pki, name + '.pem'), 'utf8');
}

/* Resolves with the error a promise rejects with; fails if it resolves. */
async function rejection(promise) {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  throw new Error('expected a failure, got success');
}

/* query.next in its callback form with the stored continuation (the promise form drops it). */
function nextPage(query) {
  return new Promise((resolve, reject) => {
    query.next((err, results) => (err ? reject(err) : resolve(results)));
  });
}

async function allPages(query) {
  const items = [];
  let pages = 0;
  do {
    items.push(...await nextPage(query));
    pages++;
  } while (query.hasMoreResults);
  return { items, pages };
}

/* runBulkEnrollmentOperation never resolves its promise: use the callback. */
function bulk(op) {
  return new Promise((resolve, reject) => {
    client.runBulkEnrollmentOperation(op, (err, result) => (err ? reject(err) : resolve(result)));
  });
}

async function step(name, fn) {
  await fn();
  console.log(`ok   ${name}`);
}

async function main() {
  let group;

  await step('group with an X.509 signing certificate (base64 of PEM, as the SDK samples do)', async () => {
    const res = await client.createOrUpdateEnrollmentGroup({
      enrollmentGroupId: 'interop-group',
      attestation: { type: 'x509', x509: { signingCertificates: {
        primary: { certificate: Buffer.from(pem('inter')).toString('base64') } } } },
      provisioningStatus: 'enabled',
    });
    group = res.responseBody;
    assert.ok(group.etag);
  });

  await step('read back with computed info', async () => {
    const { responseBody: g } = await client.getEnrollmentGroup('interop-group');
    const info = g.attestation.x509.signingCertificates.primary.info;
    assert.strictEqual(info.subjectName, 'CN=Interop Intermediate');
    assert.strictEqual(info.issuerName, 'CN=Interop Root');
    assert.match(info.sha1Thumbprint, /^[0-9A-F]{40}$/);
    assert.match(info.sha256Thumbprint, /^[0-9A-F]{64}$/);
    assert.strictEqual(info.version, 3);
    assert.strictEqual(g.etag, group.etag);
  });

  await step('query the groups', async () => {
    const { items } = await allPages(client.createEnrollmentGroupQuery({ query: '*' }));
    assert.deepStrictEqual(items.map((x) => x.enrollmentGroupId), ['interop-group']);
  });

  let updated;
  await step('update with the etag', async () => {
    const res = await client.createOrUpdateEnrollmentGroup({ ...group, provisioningStatus: 'disabled' });
    updated = res.responseBody;
    assert.strictEqual(updated.provisioningStatus, 'disabled');
    assert.notStrictEqual(updated.etag, group.etag);
    assert.strictEqual(updated.createdDateTimeUtc, group.createdDateTimeUtc);
  });

  await step('a stale etag is refused (412, InvalidEtagError)', async () => {
    const err = await rejection(client.createOrUpdateEnrollmentGroup({ ...group, provisioningStatus: 'enabled' }));
    assert.strictEqual(err.constructor.name, 'InvalidEtagError', String(err));
    const err2 = await rejection(client.deleteEnrollmentGroup('interop-group', group.etag));
    assert.strictEqual(err2.constructor.name, 'InvalidEtagError', String(err2));
  });

  await step('attestation mechanism of the group (lower-case enrollmentgroups path)', async () => {
    const { responseBody: a } = await client.getEnrollmentGroupAttestationMechanism('interop-group');
    assert.strictEqual(a.type, 'x509');
  });

  await step('delete, then 404', async () => {
    await client.deleteEnrollmentGroup(updated);
    const err = await rejection(client.getEnrollmentGroup('interop-group'));
    assert.strictEqual(err.response && err.response.statusCode, 404, String(err));
  });

  await step('individual enrollment with an X.509 certificate (PEM)', async () => {
    const { responseBody: e } = await client.createOrUpdateIndividualEnrollment({
      registrationId: 'interop-x509',
      attestation: { type: 'x509', x509: { clientCertificates: { primary: { certificate: pem('interop-x509') } } } },
    });
    assert.strictEqual(e.attestation.x509.clientCertificates.primary.info.subjectName, 'CN=interop-x509');
    assert.strictEqual(e.deviceId, 'interop-x509');
  });

  let keys;
  await step('individual enrollment with a symmetric key: keys in the PUT answer only', async () => {
    const { responseBody: e } = await client.createOrUpdateIndividualEnrollment({
      registrationId: 'interop-sym', attestation: { type: 'symmetricKey' },
      initialTwin: { tags: { site: 'interop' }, properties: { desired: { interval: 30 } } },
    });
    keys = e.attestation.symmetricKey;
    assert.strictEqual(Buffer.from(keys.primaryKey, 'base64').length, 64);
    const { responseBody: g } = await client.getIndividualEnrollment('interop-sym');
    assert.strictEqual(g.attestation.symmetricKey.primaryKey, undefined);
    assert.strictEqual(g.initialTwin.properties.desired.interval, 30);
  });

  await step('attestation mechanism has the keys', async () => {
    const { responseBody: a } = await client.getIndividualEnrollmentAttestationMechanism('interop-sym');
    assert.strictEqual(a.type, 'symmetricKey');
    assert.strictEqual(a.symmetricKey.primaryKey, keys.primaryKey);
    assert.strictEqual(a.symmetricKey.secondaryKey, keys.secondaryKey);
  });

  const ids = Array.from({ length: 23 }, (_, i) => `interop-bulk-${String(i).padStart(2, '0')}`);
  await step('bulk create (callback form), with a duplicate refused per item', async () => {
    for (let i = 0; i < ids.length; i += 10) {
      const res = await bulk({ mode: 'create', enrollments: ids.slice(i, i + 10).map((registrationId) => (
        { registrationId, attestation: { type: 'symmetricKey' } })) });
      assert.strictEqual(res.isSuccessful, true, JSON.stringify(res));
    }
    const res = await bulk({ mode: 'create', enrollments: [{ registrationId: ids[0], attestation: { type: 'symmetricKey' } }] });
    assert.strictEqual(res.isSuccessful, false);
    assert.strictEqual(res.errors[0].registrationId, ids[0]);
    assert.strictEqual(Math.floor(res.errors[0].errorCode / 1000), 409);
  });

  await step('paging with the continuation (callback form), page size 4', async () => {
    const { items, pages } = await allPages(client.createIndividualEnrollmentQuery({ query: 'SELECT *' }, 4));
    const got = items.map((x) => x.registrationId);
    const want = [...ids, 'interop-sym', 'interop-x509'];
    assert.deepStrictEqual(got, want);
    assert.strictEqual(pages, Math.ceil(want.length / 4));
    assert.ok(items.every((x) => !x.attestation.symmetricKey || !x.attestation.symmetricKey.primaryKey));
  });

  await step('bulk delete', async () => {
    for (let i = 0; i < ids.length; i += 10) {
      const res = await bulk({ mode: 'delete', enrollments: ids.slice(i, i + 10).map((registrationId) => ({ registrationId })) });
      assert.strictEqual(res.isSuccessful, true, JSON.stringify(res));
    }
  });

  await step('registration state of a registered device: read, then delete', async () => {
    dpsctl(['register', '--id-scope', process.env.DPS_ID_SCOPE, '--registration-id', 'interop-sym',
      '--symmetric-key', keys.primaryKey, '--global-endpoint', 'localhost', '--ca-file', process.env.DPS_CA]);
    const { responseBody: r } = await client.getDeviceRegistrationState('interop-sym');
    assert.strictEqual(r.registrationId, 'interop-sym');
    assert.strictEqual(r.status, 'assigned');
    assert.strictEqual(r.assignedHub, 'hub-a.example.net');
    assert.strictEqual(r.deviceId, 'interop-sym');
    assert.ok(r.etag, JSON.stringify(r));
    const stale = await rejection(client.deleteDeviceRegistrationState('interop-sym', '"stale"'));
    assert.strictEqual(stale.response && stale.response.statusCode, 412, String(stale));
    await client.deleteDeviceRegistrationState(r);
  });

  await step('registration states: missing one is 404, a group query is empty', async () => {
    const err = await rejection(client.getDeviceRegistrationState('interop-sym'));
    assert.strictEqual(err.response && err.response.statusCode, 404, String(err));
    const err2 = await rejection(client.deleteDeviceRegistrationState('interop-sym'));
    assert.strictEqual(err2.response && err2.response.statusCode, 404, String(err2));
    const { items } = await allPages(client.createEnrollmentGroupDeviceRegistrationStateQuery({ query: '*' }, 'interop-group'));
    assert.deepStrictEqual(items, []);
  });

  await step('delete the individual enrollments', async () => {
    await client.deleteIndividualEnrollment('interop-sym');
    await client.deleteIndividualEnrollment('interop-x509');
    const err = await rejection(client.getIndividualEnrollment('interop-sym'));
    assert.strictEqual(err.response && err.response.statusCode, 404, String(err));
  });

  await step('a forged key is refused (401, UnauthorizedError)', async () => {
    const forged = cs.replace(/SharedAccessKey=[^;]*/, 'SharedAccessKey=' + Buffer.alloc(32, 7).toString('base64'));
    const bad = ProvisioningServiceClient.fromConnectionString(forged);
    const err = await rejection(bad.getIndividualEnrollment('interop-sym'));
    assert.strictEqual(err.constructor.name, 'UnauthorizedError', String(err));
  });
}

main().then(() => process.exit(0), (err) => {
  console.log(`FAIL ${err && err.stack ? err.stack : err}`);
  process.exit(1);
});
