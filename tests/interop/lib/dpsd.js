// SPDX-License-Identifier: MIT
// Starts and stops a dpsd for the interop tests. The Azure SDK clients
// always connect to port 443, so dpsd listens on 127.0.0.1:443 with the
// host name "localhost"; ctest runs these tests one at a time (RESOURCE_LOCK).
'use strict';

const { spawn, spawnSync } = require('node:child_process');
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
 * answers /healthz. Returns { proc, dir, ca, connectionString, stderr(), stop() }.
 * While another test holds port 443 (outside ctest's lock), waits up to two
 * minutes for it.
 */
async function startDpsd(name) {
  const deadline = Date.now() + 120000;
  for (;;) {
    try {
      return await startOnce(name);
    } catch (err) {
      if (!/Address already in use/.test(err.message) || Date.now() > deadline) throw err;
      await sleep(1000);
    }
  }
}

async function startOnce(name) {
  const dir = tempDir(name + '.');
  const data = path.join(dir, 'data');
  const errFile = path.join(dir, 'dpsd.err');
  const errFd = fs.openSync(errFile, 'w');
  const proc = spawn(binary('dpsd'), ['--data-dir', data, '--https-listen', '127.0.0.1:443',
    '--hostname', 'localhost', '--workers', '2'], { stdio: ['ignore', 'ignore', errFd] });
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

module.exports = { startDpsd, dpsctl, runChild, tempDir, binary };
