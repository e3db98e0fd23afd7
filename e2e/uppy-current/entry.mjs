// The current @uppy releases pinned in e2e/package.json, bundled by
// `npm run build:uppy` into build/uppy-current/uppy.min.mjs and
// uppy.min.css: the same module exports the sandbox's Uppy tab imports
// from Uppy's prebuilt bundle (uppy.min.mjs), and the stylesheets of Core
// and the Dashboard, so that the tab runs unchanged on either bundle.
import '@uppy/core/css/style.min.css';
import '@uppy/dashboard/css/style.min.css';

export { default as Uppy } from '@uppy/core';
export { default as Dashboard } from '@uppy/dashboard';
export { default as AwsS3 } from '@uppy/aws-s3';
