// SPDX-License-Identifier: MIT
// Starts and stops a dpsd for the interop tests. The Azure SDK clients
// always connect to port 443, so dpsd listens on 127.0.0.1:443 with the
// host name "localhost"; ctest runs these tests one at a time (RESOURCE_LOCK).
'use strict';

const { spawn, spawnSync } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const https = require('node:https');
const os = require('node:os');
const path = require('node:path');

const root = path.resolve(__dirname, '..', '..', '..');

/* The binaries: from ctest's environment, else the default build folder. */
function binary(name) {
  const fromEnv = process.env[name.toUpperCase()];
  return fromEnv || path.join(root, 'build', name);
}

function tempDir(prefix) {
  const base = process.env.DPS_TEST_TMP || os.tmpdir();
  fs.mkdirSync(base, { recursive: true });
  return fs.mkdtempSync(path.join(base, prefix));
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function healthz(ca) {
  return new Promise((resolve) => {
    const req = https.get({ host: '127.0.0.1', port: 443, path: '/healthz', ca, servername: 'localhost',
      agent: false, timeout: 2000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => { req.destroy(); resolve(false); });
  });
}

/*
 * Starts dpsd on 127.0.0.1:443 with a fresh data directory; resolves when it
 * answers /healthz. extraArgs are added to dpsd's command line (e.g.
 * ['--linked-hub', 'hub-a.example.net']). Returns { proc, dir, ca, idScope,
 * connectionString, stderr(), stop() }. While another test holds port 443
 * (outside ctest's lock), waits up to two minutes for it.
 */
async function startDpsd(name, extraArgs = []) {
  const deadline = Date.now() + 120000;
  for (;;) {
    try {
      return await startOnce(name, extraArgs);
    } catch (err) {
      if (!/Address already in use/.test(err.message) || Date.now() > deadline) throw err;
      await sleep(1000);
    }
  }
}

async function startOnce(name, extraArgs) {
  const dir = tempDir(name + '.');
  const data = path.join(dir, 'data');
  const errFile = path.join(dir, 'dpsd.err');
  const errFd = fs.openSync(errFile, 'w');
  const proc = spawn(binary('dpsd'), ['--data-dir', data, '--https-listen', '127.0.0.1:443',
    '--mqtt-listen', '127.0.0.1:8883', '--hostname', 'localhost', '--workers', '2', ...extraArgs], { stdio: ['ignore', 'ignore', errFd] });
  fs.closeSync(errFd);
  let exited = null;
  const exit = new Promise((resolve) => proc.on('exit', (code, signal) => {
    exited = { code, signal };
    resolve(exited);
  }));
  const caPath = path.join(data, 'tls', 'ca.pem');
  const stderr = () => fs.readFileSync(errFile, 'utf8');
  const deadline = Date.now() + 30000;
  for (;;) {
    if (exited) {
      const text = stderr();
      fs.rmSync(dir, { recursive: true, force: true });
      throw new Error(`dpsd exited with ${exited.code}: ${text}`);
    }
    if (fs.existsSync(caPath) && fs.existsSync(path.join(data, 'id-scope')) &&
        await healthz(fs.readFileSync(caPath))) break;
    if (Date.now() > deadline) {
      proc.kill('SIGKILL');
      throw new Error(`dpsd did not answer /healthz: ${stderr()}`);
    }
    await sleep(100);
  }
  return {
    proc,
    dir,
    ca: caPath,
    idScope: fs.readFileSync(path.join(data, 'id-scope'), 'utf8').trim(),
    connectionString: fs.readFileSync(path.join(data, 'connection-string'), 'utf8').trim(),
    stderr,
    /* SIGTERM, then the exit status (code, signal). */
    async stop() {
      if (!exited) proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), 30000);
      const r = await exit;
      clearTimeout(timer);
      return r;
    },
  };
}

/* A service SAS token for the connection string, valid for an hour. */
function serviceToken(connectionString) {
  const cs = Object.fromEntries(connectionString.split(';').map((p) => {
    const i = p.indexOf('=');
    return [p.slice(0, i), p.slice(i + 1)];
  }));
  const se = Math.floor(Date.now() / 1000) + 3600;
  const sig = crypto.createHmac('sha256', Buffer.from(cs.SharedAccessKey, 'base64'))
    .update(`${cs.HostName}\n${se}`).digest('base64');
  return `SharedAccessSignature sr=${cs.HostName}&sig=${encodeURIComponent(sig)}` +
    `&skn=${cs.SharedAccessKeyName}&se=${se}`;
}

/*
 * One service API call to the dpsd d with a SAS from its connection string.
 * Resolves with { status, headers, body } (body parsed when it is JSON).
 */
function serviceCall(d, method, urlPath, body) {
  const data = body === undefined ? null : Buffer.from(JSON.stringify(body));
  const sep = urlPath.includes('?') ? '&' : '?';
  return new Promise((resolve, reject) => {
    const req = https.request({ host: '127.0.0.1', port: 443, servername: 'localhost', method,
      path: `${urlPath}${sep}api-version=2021-10-01`, ca: fs.readFileSync(d.ca), agent: false,
      headers: { Authorization: serviceToken(d.connectionString),
        ...(data ? { 'Content-Type': 'application/json', 'Content-Length': data.length } : {}) },
    }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let parsed = text;
        try { parsed = text ? JSON.parse(text) : null; } catch (e) { /* keep the text */ }
        resolve({ status: res.statusCode, headers: res.headers, body: parsed });
      });
    });
    req.on('error', reject);
    req.end(data);
  });
}

/* Runs dpsctl synchronously; throws with its output when it fails. */
function dpsctl(args, opts = {}) {
  const r = spawnSync(binary('dpsctl'), args, { encoding: 'utf8', ...opts });
  if (r.status !== 0) throw new Error(`dpsctl ${args.join(' ')}: ${r.status} ${r.stderr}`);
  return r.stdout;
}

/*
 * Runs a scenario script in a child node process that trusts dpsd's CA
 * (NODE_EXTRA_CA_CERTS is only read at start-up). Resolves with
 * { code, stdout, stderr }.
 */
function runChild(script, env) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [script], {
      env: { ...process.env, ...env },
      cwd: path.resolve(__dirname, '..'),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    const timer = setTimeout(() => child.kill('SIGKILL'), 300000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

module.exports = { startDpsd, dpsctl, runChild, tempDir, binary, serviceToken, serviceCall };
