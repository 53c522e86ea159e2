// The login link carries its token in the fragment (#token=…), which
// browsers never send to servers (nor to proxies' logs): put it in the
// form, and take it out of the address bar and history.
"use strict";
function takeToken() {
  const m = /^#token=([A-Za-z0-9_-]+)$/.exec(location.hash);
  if (m) {
    document.getElementById("token").value = m[1];
    history.replaceState(null, "", location.pathname);
  }
}
document.addEventListener("DOMContentLoaded", takeToken);
// Another link opened in this tab only changes the fragment.
window.addEventListener("hashchange", takeToken);
