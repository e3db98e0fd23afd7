// The sandbox page's Uppy tab: stock Uppy (Core, Dashboard and AwsS3 from
// Uppy's prebuilt bundle) whose only setting for OSS is oss_upload's
// Companion S3 routes as its companionEndpoint. Small files go in one
// PostObject form; larger ones in parts PUT to URLs Caddy presigns, then
// Caddy completes the upload. With a confirm route (caddy oss-sandbox
// --no-callbacks) the tab confirms each upload Uppy reports.

const $ = (id) => document.getElementById(id);
const script = $('uppy-tab');
const endpoint = script.dataset.endpoint; // oss_upload's uppy_path
const MiB = 1024 * 1024;

function setStatus(text, state) {
  $('uppy-status').textContent = text;
  $('uppy-status').dataset.state = state;
}

function showError(text) {
  $('uppy-error').textContent = text;
  $('uppy-error').hidden = false;
}

// Uppy reports a refused Companion route by its status text alone
// ("Companion request failed: Payload Too Large"), and keeps nothing of
// what the params and complete routes answer but the key and location.
// The page watches the answers of the Uppy routes, without changing them,
// to show Caddy's {"error": ...} and the app's answer relayed by complete,
// and to keep the confirm a signing answer carries with a confirm route.
let lastRefusal = '';
const completeAnswers = new Map(); // object key → the app's answer relayed by complete
const routeConfirms = new Map(); // object key → the confirm of the params or complete answer that signed it
const pageFetch = window.fetch.bind(window);
window.fetch = async (input, init) => {
  const res = await pageFetch(input, init);
  let url;
  try {
    url = new URL(input instanceof Request ? input.url : String(input), location.href);
  } catch {
    return res;
  }
  if (url.origin !== location.origin || !url.pathname.startsWith(`${endpoint}/`)) return res;
  try {
    if (!res.ok) {
      const body = await res.clone().json();
      if (body && typeof body.error === 'string') lastRefusal = `${res.status} ${body.error}`;
    } else if (url.pathname.endsWith('/complete')) {
      const body = await res.clone().json();
      if (body && body.key && body.callback !== undefined) completeAnswers.set(body.key, body.callback);
      if (body && body.key && body.confirm) routeConfirms.set(body.key, body.confirm);
    } else if (url.pathname === `${endpoint}/s3/params`) {
      const body = await res.clone().json();
      const key = body && body.fields && body.fields.key;
      if (key && body.confirm) routeConfirms.set(key, body.confirm);
    }
  } catch {
    // not JSON: Uppy's own message says enough
  }
  return res;
};

// ossMessage turns an OSS XML error into "Code: Message".
function ossMessage(text) {
  const doc = new DOMParser().parseFromString(text || '', 'application/xml');
  const code = doc.querySelector('Error > Code')?.textContent;
  const message = doc.querySelector('Error > Message')?.textContent;
  return code ? `${code}: ${message}` : (text || 'no details').slice(0, 300);
}

// describeError says who refused an upload: OSS (the POST or a part PUT,
// whose XML error Uppy keeps on the request) or Caddy (a Uppy route).
function describeError(file, err) {
  const xhr = err && err.request;
  if (xhr && typeof xhr.status === 'number' && xhr.status >= 400) {
    return `${file.name}: OSS refused the upload (${xhr.status}): ${ossMessage(xhr.responseText)}`;
  }
  const msg = (err && err.message) || String(err);
  return lastRefusal ? `${file.name}: ${msg}. Caddy said: ${lastRefusal}` : `${file.name}: ${msg}`;
}

// objectURL is the demo app's link to an object's bytes.
function objectURL(key) {
  return `/demo/objects/${key.split('/').map(encodeURIComponent).join('/')}`;
}

// recordedCallback waits briefly for the callback the demo app recorded
// for this key.
async function recordedCallback(key) {
  for (let i = 0; i < 10; i += 1) {
    try {
      const list = await (await pageFetch('/demo/callbacks', { cache: 'no-store' })).json();
      const found = Array.isArray(list) && list.find((c) => c.fields && c.fields.object === key);
      if (found) return found;
    } catch {
      // the app may be paused or restarting; ask again
    }
    await new Promise((r) => setTimeout(r, 300));
  }
  return undefined;
}

// confirmUpload tells Caddy's confirm route that OSS has stored the
// upload; Caddy checks it with OSS and answers the app's answer,
// {"status":"queued",…} or {"status":"duplicate"}.
async function confirmUpload(confirm, key) {
  const res = await pageFetch(confirm.url, {
    method: 'POST', body: JSON.stringify({ key, token: confirm.token }), cache: 'no-store',
  });
  let answer = {};
  try {
    answer = await res.json();
  } catch {
    // not JSON: the status says enough
  }
  if (!res.ok) throw new Error(`stored, but Caddy refused to confirm it (${res.status}): ${answer.error || res.statusText}`);
  return answer;
}

const confirmLabels = {
  queued: 'Caddy\'s answer to the confirm: the app did not take the upload, so Caddy queued it:',
  taken: 'The demo app\'s answer to the confirmed upload, relayed by Caddy\'s confirm route:',
};

const partsDone = new Map(); // file id → parts sent
let totalParts = 0;
const pending = [];

// showResult lists an upload Uppy reports, confirms it when its signing
// answer carried confirm, and shows the app's answer and how the app heard
// of the upload. It returns an error message when the confirm failed.
async function showResult(file, response) {
  const key = response.body && response.body.key;
  const parts = partsDone.get(file.id) || 0;
  const li = document.createElement('li');
  li.dataset.key = key || '';
  li.dataset.method = parts > 0 ? 'multipart' : 'post';
  li.dataset.parts = String(parts);
  li.dataset.size = String(file.size);
  li.dataset.location = (response.body && response.body.location) || response.uploadURL || '';

  const title = document.createElement('p');
  const name = document.createElement('strong');
  name.textContent = file.name;
  const link = document.createElement('a');
  link.className = 'object-link';
  link.href = key ? objectURL(key) : '#';
  link.target = '_blank';
  link.rel = 'noopener';
  link.textContent = key || '(no key returned)';
  title.append(name, ' stored as ', link);

  const how = document.createElement('p');
  how.className = 'how';
  how.textContent = `${file.size} bytes, ${parts > 0 ? `multipart in ${parts} ${parts === 1 ? 'part' : 'parts'}` : 'one PostObject form'}`;

  const where = document.createElement('p');
  where.className = 'location';
  where.append('Location, as Uppy reports it: ');
  const code = document.createElement('code');
  code.textContent = li.dataset.location || '(none)';
  where.append(code);

  const via = document.createElement('p');
  via.className = 'via';
  const label = document.createElement('p');
  const pre = document.createElement('pre');
  pre.className = 'callback';
  li.append(title, how, where, via, label, pre);
  $('uppy-results').prepend(li);
  const heardBy = (way) => {
    li.dataset.via = way;
    via.textContent = way === 'confirm'
      ? 'The app heard of it by confirm: the tab confirmed the upload with Caddy, which checked it with OSS.'
      : 'The app heard of it by callback: OSS called Caddy back, and Caddy verified the callback.';
  };

  // Uppy's upload-success carries the route's answer in some releases; in
  // Uppy 6 only the key and location, so the confirm comes from the answer
  // the page watched.
  const confirm = (response.body && response.body.confirm) || (key && routeConfirms.get(key));
  if (confirm) {
    routeConfirms.delete(key);
    let answer;
    try {
      answer = await confirmUpload(confirm, key);
    } catch (err) {
      label.textContent = `Confirming the upload failed: ${err.message}`;
      pre.hidden = true;
      li.dataset.callback = 'unconfirmed';
      return `${file.name}: ${err.message}`;
    }
    if (answer.status !== 'duplicate' && !completeAnswers.has(key)) {
      label.textContent = answer.status === 'queued' ? confirmLabels.queued : confirmLabels.taken;
      pre.textContent = JSON.stringify(answer, null, 2);
      li.dataset.callback = 'confirm';
      heardBy('confirm');
      return undefined;
    }
    // OSS called back too: the app heard of the upload by that callback,
    // and the confirm was answered from the upload's state.
  }

  if (key && completeAnswers.has(key)) {
    label.textContent = 'The demo app\'s answer to the verified callback, relayed by Caddy\'s complete route:';
    pre.textContent = JSON.stringify(completeAnswers.get(key), null, 2);
    li.dataset.callback = 'complete';
    heardBy('callback');
    return undefined;
  }
  const recorded = key ? await recordedCallback(key) : undefined;
  if (recorded) {
    label.textContent = 'The verified callback as the demo app recorded it (GET /demo/callbacks):';
    pre.textContent = JSON.stringify(recorded, null, 2);
    li.dataset.callback = 'recorded';
    heardBy('callback');
  } else {
    label.textContent = 'The demo app has recorded no callback for this upload.';
    pre.hidden = true;
    li.dataset.callback = 'none';
  }
  return undefined;
}

let mod;
try {
  mod = await import(script.dataset.bundle);
} catch (err) {
  setStatus(`Uppy did not load from ${script.dataset.bundle}: ${err.message || err}`, 'error');
  throw err;
}
const { Uppy, Dashboard, AwsS3 } = mod;

const threshold = () => Math.max(0, Number($('uppy-threshold').value) || 0) * MiB;

const uppy = new Uppy({ id: 'sandbox' })
  .use(Dashboard, {
    inline: true,
    target: '#uppy-dashboard',
    width: '100%',
    height: 360,
    showProgressDetails: true,
    proudlyDisplayPoweredByUppy: false,
  })
  .use(AwsS3, {
    companionEndpoint: endpoint,
    shouldUseMultipart: (file) => file.size > threshold(),
  });
window.sandboxUppy = uppy; // for the browser console

uppy.on('upload', () => {
  lastRefusal = '';
  $('uppy-error').hidden = true;
  $('uppy-error').textContent = '';
  setStatus('Uploading…', 'busy');
});

uppy.on('s3-multipart:part-uploaded', (file, part) => {
  partsDone.set(file.id, (partsDone.get(file.id) || 0) + 1);
  totalParts += 1;
  $('uppy-status').dataset.partsDone = String(totalParts);
  if ($('uppy-status').dataset.state === 'busy') {
    setStatus(`Uploading… ${file.name}: part ${part.PartNumber} sent`, 'busy');
  }
});

uppy.on('pause-all', () => setStatus('Paused: the parts already sent stay in OSS.', 'paused'));
uppy.on('resume-all', () => setStatus('Resuming: Uppy lists the parts OSS has and sends the rest…', 'busy'));
uppy.on('upload-pause', (file, isPaused) => {
  if (isPaused) setStatus(`Paused ${file.name}: the parts already sent stay in OSS.`, 'paused');
  else setStatus(`Resuming ${file.name}…`, 'busy');
});

uppy.on('upload-success', (file, response) => {
  pending.push(showResult(file, response));
});

uppy.on('upload-error', (file, err) => {
  const text = describeError(file, err);
  showError($('uppy-error').hidden ? text : `${$('uppy-error').textContent}\n${text}`);
  setStatus('Upload refused.', 'error');
});

uppy.on('complete', async (result) => {
  const unconfirmed = (await Promise.all(pending.splice(0))).filter(Boolean);
  for (const text of unconfirmed) showError($('uppy-error').hidden ? text : `${$('uppy-error').textContent}\n${text}`);
  const failed = result.failed || [];
  const ok = result.successful || [];
  if (unconfirmed.length > 0) {
    setStatus(`Upload not confirmed: ${unconfirmed.length} of ${ok.length} stored ${ok.length === 1 ? 'file was' : 'files were'} not handed to the app.`, 'error');
  } else if (failed.length > 0) {
    setStatus(`Upload refused: ${failed.length} of ${failed.length + ok.length} failed.`, 'error');
  } else if (ok.length > 0) {
    setStatus(`Uploaded ${ok.length} ${ok.length === 1 ? 'file' : 'files'}.`, 'ok');
  }
  document.getElementById('refresh-objects')?.click();
});

setStatus('Ready: add files to the Dashboard, then press Upload.', 'ready');
