// SPDX-License-Identifier: MIT
// The Node.js device SDK over HTTPS against dpsd (issue 4): the user's case
// (a group enrolled with the root, a device issued by an intermediate), a
// group enrolled with an intermediate, an individual X.509 enrollment,
// symmetric-key group (derived key) and individual registrations, and every
// refusal, each checked twice: the error the device got and the reason the
// operator reads in GET /registrations/{id}/attempts. What every transport
// answers alike is checked by lib/device_matrix.js; here what HTTPS adds.
'use strict';

const test = require('node:test');
const assert = require('node:assert');

const { X509_REFUSALS, runMatrix } = require('./lib/device_matrix');

test('device SDK over HTTPS against dpsd: X.509 and symmetric keys, and the reasons of refusals', () =>
  runMatrix('device-interop', undefined, async ({ outcome, show, refused }) => {
    // Over HTTPS every refusal is also the HTTP status 401.
    for (const [name] of X509_REFUSALS) assert.strictEqual(outcome[name].error.status, 401, show(name));
    // A refused SAS gets the same 401002 body as a refused certificate.
    await refused('sym-wrong-key', 'node-sym-ind', /signature/);
    await refused('sym-group-key', 'node-sym-gk', 'group key');
    await refused('sym-expired-sas', 'node-sym-ind', 'expired');
    for (const name of ['sym-wrong-key', 'sym-group-key', 'sym-expired-sas'])
      assert.strictEqual(outcome[name].error.status, 401, show(name));
  }));
