// Package mail renders and sends the transactional mail of a tenant
// (address verification, password reset, sign-in links and codes, email
// change, invitations, and notices of changed passwords and security
// settings). It speaks SMTP, not HTTP, and imports nothing of
// Gatehouse but ciam; the outbox worker that decides when to send drives it.
//
// # Rendering
//
// Renderer.Render fills the templates of a Kind with Data: the tenant's
// branding (display name, logo, primary colour), the recipient, and the
// Link or Code the kind needs, and returns a subject, a plain-text part and
// an HTML part in the recipient's language (English, or German for "de"
// locales). Links are built by the caller from the configured public URL;
// Render refuses one that is not absolute https (http only to localhost or
// 127.0.0.1). The HTML part is html/template output: every value is
// escaped, styles are inline, and the only external resource is the
// tenant's https logo.
//
// # Template files
//
// The embedded templates live in templates/. For kind K and language L
// (en or de) a message is made from three files per part:
//
//	layout.html   footer.L.html   K.L.html   (html/template)
//	layout.txt    footer.L.txt    K.L.txt    (text/template)
//
// layout.* defines "layout", the page around the message, and in HTML the
// helpers "button" (the Link as a button in the brand colour, with the bare
// link below it) and "code" (the Code in large digits). footer.L.* defines
// "footer" and "greeting" (and in HTML "link_fallback"). K.L.txt defines
// "subject" (one line) and "body"; K.L.html defines "body" and, for kinds
// with a link, "button_label".
//
// The fields a template can use are those of the unexported view struct:
// .Lang, .Subject (HTML only), .Brand.Name, .Brand.LogoURL, .Brand.Color,
// .Brand.TextColor, .Name, .Email, .Link, .Code, .Expires (a localised
// duration such as "30 minutes"), .NewEmail (masked), .Inviter, .Change
// (which security setting a security_notice reports: totp_added,
// totp_removed, recovery_codes, passkey_added or passkey_removed), .HasLink,
// .HasCode and .HasExpiry.
//
// A deployment replaces any file by putting one with the same name in
// Config.TemplateDir, and a tenant by putting it in a subdirectory named by
// its slug. Render looks for each file in this order:
//
//	<template_dir>/<tenant-slug>/verify_email.de.html
//	<template_dir>/verify_email.de.html
//	templates/verify_email.de.html (embedded)
//
// Files are read at every Render, so edits apply without a restart.
// NewRenderer renders every kind in every language for the deployment and
// for each tenant directory, and rejects unknown file or directory names,
// so mistakes surface at start-up.
//
// # Sending
//
// A Sender delivers a Message. SMTP sends through a relay over
// github.com/wneessen/go-mail with TLS "none", "starttls" (required) or
// "tls" (implicit), optional SMTP AUTH, and a timeout for the whole
// delivery. Its errors are *DeliveryError; Permanent(err) tells a worker to
// dead-letter (a 5xx reply to the message or its recipient, an invalid
// address) rather than retry (connection refused, timeouts, 4xx, the relay
// being unreachable or misconfigured). The caller sets the Message-ID
// header from its outbox entry (see MessageID), so retries of one message
// share it.
//
// Config holds the relay settings with YAML keys for the deployment's
// config file; Merge applies a tenant's override, and Validate reports
// every problem with the key to change.
package mail
