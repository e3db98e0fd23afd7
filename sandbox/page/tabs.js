// The sandbox page's tabs (the upload form, and Uppy) and the uploader's
// identity, which Caddy reads from the sandbox_user cookie.

const $ = (id) => document.getElementById(id);

// Tabs: the upload form, and Uppy (sandbox/page/uppy-tab.js). #uppy in the
// address opens the Uppy tab.
function showTab(name) {
  for (const tab of document.querySelectorAll('[role=tab]')) {
    const selected = tab.id === `tab-${name}`;
    tab.setAttribute('aria-selected', String(selected));
    $(tab.getAttribute('aria-controls')).hidden = !selected;
  }
}
$('tab-form').addEventListener('click', () => { showTab('form'); history.replaceState(null, '', '#'); });
$('tab-uppy').addEventListener('click', () => { showTab('uppy'); history.replaceState(null, '', '#uppy'); });
if (location.hash === '#uppy') showTab('uppy');

// The uploader's identity is the sandbox_user cookie, which Caddy's
// key_prefix reads (guest without one).
const userPattern = /^[A-Za-z0-9_-]{1,32}$/;

function currentUser() {
  const m = document.cookie.match(/(?:^|;\s*)sandbox_user=([^;]*)/);
  const user = m ? decodeURIComponent(m[1]) : '';
  return userPattern.test(user) ? user : 'guest';
}

function showUser() {
  const user = currentUser();
  $('user').value = user;
  $('user-shown').textContent = user;
  $('identity').dataset.state = 'ok';
}

$('user-apply').addEventListener('click', () => {
  const user = $('user').value.trim();
  if (!userPattern.test(user)) {
    $('identity').dataset.state = 'error';
    $('user-shown').textContent = 'letters, digits, - and _ only, at most 32';
    return;
  }
  document.cookie = `sandbox_user=${user}; path=/; SameSite=Lax`;
  showUser();
});
showUser();
