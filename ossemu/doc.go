// Package ossemu is an in-memory emulator of Alibaba Cloud OSS and STS for
// tests and local development. It has no Caddy imports and can be started
// from any Go test or program.
package ossemu
