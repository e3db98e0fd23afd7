// Package callback holds the OSS upload-callback protocol as the
// oss_upload handler checks it, with no Caddy and no HTTP server types:
// the string OSS signs and its RSA-MD5 signature, the canonical form of a
// callback path in every spelling a router may accept, the binding that
// ties a callback to the signing decision of one handler, the fit of a
// binding's scope to the handler's key_prefix template, the confirm token
// (a binding with the variables it covers, for uploads confirmed by the
// uploader where OSS callbacks cannot reach), and the identity of an
// upload event.
package callback
