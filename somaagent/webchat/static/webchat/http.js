/* SomaHttp: JSON calls to the API with the login cookie and the CSRF token. */
(function (root) {
  "use strict";

  function csrfToken() {
    var m = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return m ? decodeURIComponent(m[1]) : "";
  }

  /* Resolves to {status, ok, data}; a 401 (logged out) goes to the login page. */
  function api(method, url, body, headers) {
    var init = {
      method: method,
      credentials: "same-origin",
      headers: Object.assign({ Accept: "application/json" }, headers || {}),
    };
    if (method !== "GET") init.headers["X-CSRFToken"] = csrfToken();
    if (body instanceof FormData) init.body = body;
    else if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    return fetch(url, init).then(function (r) {
      if (r.status === 401) toLogin();
      return r.text().then(function (text) {
        var data = null;
        try {
          data = text ? JSON.parse(text) : null;
        } catch (e) {
          data = null;
        }
        return { status: r.status, ok: r.ok, data: data };
      });
    });
  }

  function errorText(res) {
    if (res && res.data && res.data.error) return res.data.error.message;
    return "Something went wrong (" + (res ? res.status : "network") + ").";
  }

  function toLogin() {
    window.location.assign(SomaHttp.loginUrl + "?next=" + encodeURIComponent(window.location.pathname));
  }

  function uuid() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    return "k-" + Date.now().toString(36) + "-" + Math.random().toString(36).slice(2);
  }

  var SomaHttp = { api: api, errorText: errorText, uuid: uuid, loginUrl: "/login/" };
  root.SomaHttp = SomaHttp;
})(window);
