// Passkey ceremonies (WebAuthn Level 2) for forms marked data-webauthn="create" or "get":
// ask our server for options (data-options), run navigator.credentials, then submit the
// form with the credential as JSON (binary values as base64url) and the challenge's handle.
(function () {
  "use strict";

  function toBytes(text) {
    var base64 = text.replace(/-/g, "+").replace(/_/g, "/");
    var binary = atob(base64 + "===".slice((base64.length + 3) % 4));
    var bytes = new Uint8Array(binary.length);
    for (var i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
    return bytes.buffer;
  }

  function toText(buffer) {
    var bytes = new Uint8Array(buffer);
    var binary = "";
    for (var i = 0; i < bytes.length; i++) binary += String.fromCharCode(bytes[i]);
    return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function descriptors(list) {
    return (list || []).map(function (item) {
      item.id = toBytes(item.id);
      return item;
    });
  }

  function ceremony(kind, options) {
    options.challenge = toBytes(options.challenge);
    if (kind === "create") {
      options.user.id = toBytes(options.user.id);
      options.excludeCredentials = descriptors(options.excludeCredentials);
      return navigator.credentials.create({ publicKey: options });
    }
    options.allowCredentials = descriptors(options.allowCredentials);
    return navigator.credentials.get({ publicKey: options });
  }

  function asJSON(credential) {
    var r = credential.response;
    var response = { clientDataJSON: toText(r.clientDataJSON) };
    if (r.attestationObject) {
      response.attestationObject = toText(r.attestationObject);
      response.transports = r.getTransports ? r.getTransports() : [];
    } else {
      response.authenticatorData = toText(r.authenticatorData);
      response.signature = toText(r.signature);
      response.userHandle = r.userHandle ? toText(r.userHandle) : null;
    }
    return JSON.stringify({
      id: credential.id,
      rawId: toText(credential.rawId),
      type: credential.type,
      response: response,
      authenticatorAttachment: credential.authenticatorAttachment || null,
      clientExtensionResults: credential.getClientExtensionResults(),
    });
  }

  function run(form) {
    var status = form.querySelector("[data-webauthn-status]");
    status.textContent = "";
    fetch(form.getAttribute("data-options"), {
      method: "POST",
      body: new URLSearchParams(new FormData(form)),
      credentials: "same-origin",
    })
      .then(function (answer) {
        if (!answer.ok) throw new Error("options refused");
        return answer.json();
      })
      .then(function (data) {
        form.elements.challenge.value = data.challenge_id;
        return ceremony(form.getAttribute("data-webauthn"), data.publicKey);
      })
      .then(function (credential) {
        form.elements.credential.value = asJSON(credential);
        form.submit();
      })
      .catch(function () {
        status.textContent =
          status.getAttribute("data-failed") ||
          "The passkey was not used. Try again, or reload the page.";
      });
  }

  var forms = document.querySelectorAll("form[data-webauthn]");
  for (var i = 0; i < forms.length; i++) {
    var form = forms[i];
    if (!window.PublicKeyCredential) continue;
    form.hidden = false;
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      run(event.currentTarget);
    });
  }
})();
