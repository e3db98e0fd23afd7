// The sandbox page: asks Caddy's oss_upload routes for permission, uploads
// to the emulator, and shows what came back.
'use strict';

const $ = (id) => document.getElementById(id);

class UploadError extends Error {}

function contentType(file) {
  return file.type || 'application/octet-stream';
}

function setStatus(text, state) {
  $('status').textContent = text;
  $('status').dataset.state = state;
}

function setProgress(fraction) {
  $('progress').hidden = false;
  $('progress').value = Math.round(fraction * 100);
}

// getJSON calls a signing route; a refusal becomes a readable message.
async function getJSON(url) {
  const res = await fetch(url, { headers: { Accept: 'application/json' }, cache: 'no-store' });
  let body = {};
  try {
    body = await res.json();
  } catch {
    // not JSON: the status says enough
  }
  if (!res.ok) {
    throw new UploadError(`Caddy refused to sign the upload (${res.status}): ${body.error || res.statusText}`);
  }
  return body;
}

// ossMessage turns an OSS XML error into "Code: Message".
function ossMessage(text) {
  const doc = new DOMParser().parseFromString(text || '', 'application/xml');
  const code = doc.querySelector('Error > Code')?.textContent;
  const message = doc.querySelector('Error > Message')?.textContent;
  return code ? `${code}: ${message}` : (text || 'no details');
}

function send({ method, url, headers = {}, body }) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open(method, url);
    for (const [k, v] of Object.entries(headers)) xhr.setRequestHeader(k, v);
    xhr.upload.onprogress = (e) => { if (e.lengthComputable) setProgress(e.loaded / e.total); };
    xhr.onload = () => resolve({ status: xhr.status, text: xhr.responseText });
    xhr.onerror = () => reject(new UploadError(`The upload to ${new URL(url).host} failed: network error`));
    xhr.send(body);
  });
}

// fromOSS reads OSS's answer to an upload with a callback: 200 carries the
// app's JSON; 203 means stored but the callback failed.
function fromOSS(res) {
  if (res.status === 200) {
    try {
      return JSON.parse(res.text);
    } catch {
      throw new UploadError(`OSS answered 200 without the app's JSON: ${res.text.slice(0, 200)}`);
    }
  }
  if (res.status === 203) {
    throw new UploadError(`The file was stored, but the callback failed: ${ossMessage(res.text)}`);
  }
  throw new UploadError(`OSS refused the upload (${res.status}): ${ossMessage(res.text)}`);
}

// confirmUpload tells Caddy's confirm route that OSS has stored the
// upload (docs/routes.md, "POST <confirm_path>"): Caddy checks it with OSS
// and answers the app's answer, {"status":"queued",…} or
// {"status":"duplicate"}, as OSS would relay a callback's.
async function confirmUpload(confirm, key) {
  setStatus(`Confirming the upload at ${confirm.url}…`, 'busy');
  const res = await fetch(confirm.url, {
    method: 'POST', body: JSON.stringify({ key, token: confirm.token }), cache: 'no-store',
  });
  let answer = {};
  try {
    answer = await res.json();
  } catch {
    // not JSON: the status says enough
  }
  if (!res.ok) {
    throw new UploadError(`The file was stored, but Caddy refused to confirm it (${res.status}): ${answer.error || res.statusText}`);
  }
  return answer;
}

// confirmed confirms an upload whose signing answer carried confirm. An
// answer OSS relayed (relayed !== undefined) means OSS called back too: the
// app heard of the upload by that callback, and Caddy answers the confirm
// from the upload's state ("duplicate").
async function confirmed(key, confirm, relayed) {
  const answer = await confirmUpload(confirm, key);
  if (relayed !== undefined) return { key, answer: relayed, via: 'callback' };
  return { key, answer, via: 'confirm' };
}

// fromOSSThenConfirm reads OSS's answer to a form or PUT upload, then
// confirms it when the signing answer carried confirm. Without a callback
// OSS answers 2xx with no JSON; 203 means stored, its callback failed,
// and the confirm still hands the upload to the app.
async function fromOSSThenConfirm(res, key, confirm) {
  if (!confirm) return { key, answer: fromOSS(res), via: 'callback' };
  if (res.status < 200 || res.status > 299) {
    throw new UploadError(`OSS refused the upload (${res.status}): ${ossMessage(res.text)}`);
  }
  let relayed;
  if (res.status === 200 && res.text) {
    try {
      relayed = JSON.parse(res.text);
    } catch {
      // not a callback's answer
    }
  }
  return confirmed(key, confirm, relayed);
}

function hints(file) {
  return new URLSearchParams({ filename: file.name, type: contentType(file), size: String(file.size) });
}

async function waitIfAsked() {
  const seconds = Number($('delay').value) || 0;
  if (seconds > 0) {
    setStatus(`Waiting ${seconds} s before uploading…`, 'busy');
    await new Promise((r) => setTimeout(r, seconds * 1000));
  }
}

async function uploadPost(file) {
  const p = await getJSON(`/oss/post-policy?${hints(file)}`);
  await waitIfAsked();
  setStatus('Uploading with a PostObject form…', 'busy');
  const form = new FormData();
  for (const [k, v] of Object.entries(p.fields)) form.append(k, v);
  form.append('file', file); // file must be the last field
  const res = await send({ method: 'POST', url: p.url, body: form });
  return fromOSSThenConfirm(res, p.key, p.confirm);
}

async function uploadPresign(file) {
  const p = await getJSON(`/oss/presign?${hints(file)}`);
  await waitIfAsked();
  setStatus('Uploading with a presigned PUT…', 'busy');
  const res = await send({ method: p.method || 'PUT', url: p.url, headers: p.headers, body: file });
  return fromOSSThenConfirm(res, p.key, p.confirm);
}

function randomName(file) {
  const id = Array.from(crypto.getRandomValues(new Uint8Array(8)), (b) => b.toString(16).padStart(2, '0')).join('');
  const dot = file.name.lastIndexOf('.');
  return id + (dot > 0 ? file.name.slice(dot).toLowerCase() : '');
}

let stsRefreshes = 0;

async function uploadSTS(file) {
  if (typeof OSS === 'undefined') {
    throw new UploadError('ali-oss did not load: start the sandbox with --ali-oss-js, or allow the public CDN');
  }
  const c = await getJSON('/oss/sts');
  stsRefreshes = 0;
  const client = new OSS({
    region: `oss-${c.Region}`,
    bucket: c.Bucket,
    endpoint: c.Endpoint,
    cname: true,
    secure: c.Endpoint.startsWith('https:'),
    authorizationV4: true,
    accessKeyId: c.AccessKeyId,
    accessKeySecret: c.AccessKeySecret,
    stsToken: c.SecurityToken,
    refreshSTSTokenInterval: Number($('sts-refresh').value) || 300000,
    refreshSTSToken: async () => {
      const n = await getJSON('/oss/sts');
      stsRefreshes += 1;
      $('sts-refreshes').textContent = String(stsRefreshes);
      return { accessKeyId: n.AccessKeyId, accessKeySecret: n.AccessKeySecret, stsToken: n.SecurityToken };
    },
  });
  await waitIfAsked();
  const key = c.Prefix + randomName(file);
  const options = { mime: contentType(file), callback: c.Callback };
  try {
    let result;
    if (file.size >= Number($('multipart-threshold').value)) {
      setStatus('Uploading with ali-oss multipartUpload…', 'busy');
      result = await client.multipartUpload(key, file, {
        ...options,
        partSize: Number($('part-size').value),
        parallel: 2,
        progress: (p) => setProgress(p),
      });
    } else {
      setStatus('Uploading with ali-oss put…', 'busy');
      result = await client.put(key, file, options);
      setProgress(1);
    }
    // With a confirm route the STS answer has Confirm: its token covers
    // every key below Prefix. ali-oss got the app's answer in result.data
    // only when it sent the Callback the answer gave it.
    if (c.Confirm) return await confirmed(key, c.Confirm, c.Callback ? result.data : undefined);
    return { key, answer: result.data, via: 'callback' };
  } catch (err) {
    if (err.status) throw new UploadError(`OSS refused the upload (${err.status}): ${err.code}: ${err.message}`);
    throw err;
  }
}

// refreshObjects lists what the emulator stored, from the demo app.
async function refreshObjects() {
  let list;
  try {
    const res = await fetch('/demo/objects', { cache: 'no-store' });
    list = await res.json();
  } catch (err) {
    $('objects-empty').textContent = `Listing the objects failed: ${err.message || err}`;
    return;
  }
  const body = $('objects').querySelector('tbody');
  body.replaceChildren();
  for (const o of list.objects) {
    const row = document.createElement('tr');
    row.dataset.key = o.key;
    const key = document.createElement('td');
    key.className = 'key';
    const link = document.createElement('a');
    link.href = o.url;
    link.target = '_blank';
    link.rel = 'noopener';
    link.textContent = o.key;
    key.append(link);
    const size = document.createElement('td');
    size.className = 'size';
    size.textContent = `${o.size} bytes`;
    const type = document.createElement('td');
    type.className = 'type';
    type.textContent = o.type;
    row.append(key, size, type);
    body.append(row);
  }
  $('objects').hidden = list.objects.length === 0;
  $('objects-empty').hidden = list.objects.length > 0;
  $('objects-empty').textContent = 'No objects yet.';
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// showAppState shows whether the demo app is paused, and what the toggle does.
function showAppState(paused) {
  $('app-section').dataset.paused = String(paused);
  $('app-state').textContent = paused ? 'paused: callbacks get 503' : 'running';
  $('app-toggle').textContent = paused ? 'Resume the app' : 'Pause the app';
}

async function loadAppState() {
  try {
    const res = await fetch('/demo/state', { cache: 'no-store' });
    showAppState((await res.json()).paused);
  } catch {
    $('app-state').textContent = 'unknown';
  }
}

$('app-toggle').addEventListener('click', async () => {
  const paused = $('app-section').dataset.paused === 'true';
  $('app-toggle').disabled = true;
  try {
    const res = await fetch(paused ? '/demo/resume' : '/demo/pause', { method: 'POST', cache: 'no-store' });
    showAppState((await res.json()).paused);
  } catch (err) {
    $('app-state').textContent = `unknown (${err.message || err})`;
  } finally {
    $('app-toggle').disabled = false;
  }
});

// watching numbers the upload whose queued callback is watched; a new
// upload stops the watch.
let watching = 0;

// watchDelivery polls the demo app every second until it has recorded the
// callback with this idempotency key, then says after how many attempts.
async function watchDelivery(key) {
  const id = ++watching;
  while (id === watching) {
    await sleep(1000);
    let list;
    try {
      list = await (await fetch('/demo/callbacks', { cache: 'no-store' })).json();
    } catch {
      continue; // the app may be restarting; ask again
    }
    const delivered = Array.isArray(list) && list.find((c) => c.idempotencyKey === key);
    if (delivered && id === watching) {
      const n = delivered.attempts;
      setStatus(`Delivered after ${n} ${n === 1 ? 'attempt' : 'attempts'}.`, 'ok');
      $('delivered-callback').textContent = JSON.stringify(delivered, null, 2);
      $('delivered').hidden = false;
      return;
    }
  }
}

// How the app heard of an upload, and what the page says of the answer
// it shows.
const viaText = {
  callback: 'callback: OSS called Caddy back, Caddy verified the callback and handed it to the app',
  confirm: 'confirm: this page confirmed the upload with Caddy, which checked it with OSS and handed it to the app',
};
const answerLabels = {
  callback: {
    taken: 'The demo app\'s answer, relayed by OSS after Caddy verified the callback:',
    queued: 'Caddy\'s answer, relayed by OSS: the app did not take the callback, so Caddy queued it:',
    duplicate: 'Caddy\'s answer, relayed by OSS: the app already had this upload:',
  },
  confirm: {
    taken: 'The demo app\'s answer to the confirmed upload, relayed by Caddy\'s confirm route:',
    queued: 'Caddy\'s answer to the confirm: the app did not take the upload, so Caddy queued it:',
    duplicate: 'Caddy\'s answer to the confirm: the app already had this upload:',
  },
};

const modes = {
  post: ['PostObject form', uploadPost],
  presign: ['Presigned PUT', uploadPresign],
  sts: ['STS + ali-oss', uploadSTS],
};

$('upload-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const file = $('file').files[0];
  if (!file) return;
  const mode = document.querySelector('input[name=mode]:checked').value;
  const [label, upload] = modes[mode];
  $('upload').disabled = true;
  $('error').hidden = true;
  $('result').hidden = true;
  $('delivered').hidden = true;
  watching += 1;
  $('progress').value = 0;
  $('sts-refreshes').textContent = '0';
  setStatus('Asking Caddy for permission…', 'busy');
  try {
    const { key, answer, via } = await upload(file);
    $('result-mode').textContent = label;
    $('result-key').textContent = key;
    $('result-size').textContent = `${file.size} bytes`;
    $('result-via').textContent = viaText[via];
    $('result').dataset.via = via;
    $('callback').textContent = JSON.stringify(answer, null, 2);
    $('result').hidden = false;
    const labels = answerLabels[via];
    // Caddy answers "queued" for the app when the app cannot take the
    // callback now, and delivers it later.
    if (answer && answer.status === 'queued' && answer.idempotency_key) {
      $('callback-label').textContent = labels.queued;
      setStatus('Queued: Caddy will deliver the callback when the app is back.', 'queued');
      watchDelivery(answer.idempotency_key);
    } else if (answer && answer.status === 'duplicate') {
      $('callback-label').textContent = labels.duplicate;
      setStatus(`Uploaded ${file.name} (${file.size} bytes); the app already had it.`, 'ok');
    } else {
      $('callback-label').textContent = labels.taken;
      setStatus(`Uploaded ${file.name} (${file.size} bytes).`, 'ok');
    }
  } catch (err) {
    $('error').textContent = err instanceof UploadError ? err.message : `Unexpected error: ${err.message || err}`;
    $('error').hidden = false;
    $('progress').hidden = true;
    setStatus('Upload refused.', 'error');
  } finally {
    $('upload').disabled = false;
    await refreshObjects();
  }
});

$('refresh-objects').addEventListener('click', refreshObjects);
refreshObjects();
loadAppState();
