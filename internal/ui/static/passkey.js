// Passkey ceremonies for the hosted pages. Each form with data-passkey
// carries the options for the browser (data-options) and a sealed state;
// this script asks the browser for a passkey, puts its answer in the
// form's "credential" field and submits the form. Pages work without it:
// the forms stay hidden where the browser has no WebAuthn.
(function () {
  'use strict';
  if (!window.PublicKeyCredential || !navigator.credentials) {
    return;
  }

  function toBuffer(s) {
    s = s.replace(/-/g, '+').replace(/_/g, '/');
    while (s.length % 4) {
      s += '=';
    }
    var bin = atob(s);
    var out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) {
      out[i] = bin.charCodeAt(i);
    }
    return out.buffer;
  }

  function toBase64URL(buf) {
    var bytes = new Uint8Array(buf);
    var s = '';
    for (var i = 0; i < bytes.length; i++) {
      s += String.fromCharCode(bytes[i]);
    }
    return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  }

  function creationOptions(o) {
    o.challenge = toBuffer(o.challenge);
    o.user.id = toBuffer(o.user.id);
    (o.excludeCredentials || []).forEach(function (c) { c.id = toBuffer(c.id); });
    return o;
  }

  function requestOptions(o) {
    o.challenge = toBuffer(o.challenge);
    (o.allowCredentials || []).forEach(function (c) { c.id = toBuffer(c.id); });
    return o;
  }

  function credentialJSON(c) {
    var r = c.response;
    var out = {
      id: c.id,
      rawId: toBase64URL(c.rawId),
      type: c.type,
      clientExtensionResults: c.getClientExtensionResults ? c.getClientExtensionResults() : {},
      response: { clientDataJSON: toBase64URL(r.clientDataJSON) }
    };
    if (c.authenticatorAttachment) {
      out.authenticatorAttachment = c.authenticatorAttachment;
    }
    if (r.attestationObject) {
      out.response.attestationObject = toBase64URL(r.attestationObject);
      if (r.getTransports) {
        out.response.transports = r.getTransports();
      }
    } else {
      out.response.authenticatorData = toBase64URL(r.authenticatorData);
      out.response.signature = toBase64URL(r.signature);
      if (r.userHandle) {
        out.response.userHandle = toBase64URL(r.userHandle);
      }
    }
    return out;
  }

  function options(form) {
    var o = JSON.parse(form.getAttribute('data-options'));
    return o.publicKey || o;
  }

  function fail(form, err) {
    form.removeAttribute('data-busy');
    if (err && err.name === 'AbortError') {
      return;
    }
    var p = form.querySelector('[data-passkey-error]');
    if (p) {
      p.hidden = false;
    }
    // A cancelled or failed attempt must not end autofill on the page.
    startAutofill(form);
  }

  function send(form, c) {
    form.elements.credential.value = JSON.stringify(credentialJSON(c));
    form.submit();
  }

  var autofill = null; // the pending conditional request, aborted by a click

  // startAutofill offers the passkeys in the email field's autofill
  // (conditional mediation), for a form marked data-autofill.
  function startAutofill(form) {
    if (autofill || form.getAttribute('data-passkey') !== 'get' || !form.hasAttribute('data-autofill') ||
        !PublicKeyCredential.isConditionalMediationAvailable) {
      return;
    }
    var ctrl = new AbortController();
    autofill = ctrl;
    PublicKeyCredential.isConditionalMediationAvailable().then(function (ok) {
      if (!ok || ctrl.signal.aborted) {
        return;
      }
      return navigator.credentials.get({
        mediation: 'conditional',
        publicKey: requestOptions(options(form)),
        signal: ctrl.signal
      }).then(function (c) {
        if (c) {
          send(form, c);
        }
      });
    }).catch(function (e) {
      if (autofill === ctrl) {
        autofill = null;
      }
      if (!e || e.name !== 'AbortError') {
        var p = form.querySelector('[data-passkey-error]');
        if (p) {
          p.hidden = false;
        }
      }
    });
  }

  document.querySelectorAll('form[data-passkey]').forEach(function (form) {
    form.hidden = false;
    var mode = form.getAttribute('data-passkey');
    form.addEventListener('submit', function (ev) {
      if (form.elements.credential.value) {
        return;
      }
      ev.preventDefault();
      if (form.hasAttribute('data-busy')) {
        return;
      }
      form.setAttribute('data-busy', '');
      var err = form.querySelector('[data-passkey-error]');
      if (err) {
        err.hidden = true;
      }
      if (autofill) {
        autofill.abort();
        autofill = null;
      }
      var p = mode === 'create'
        ? navigator.credentials.create({ publicKey: creationOptions(options(form)) })
        : navigator.credentials.get({ publicKey: requestOptions(options(form)) });
      p.then(function (c) {
        if (!c) {
          throw new Error('no credential');
        }
        send(form, c);
      }).catch(function (e) { fail(form, e); });
    });
    startAutofill(form);
  });
}());
