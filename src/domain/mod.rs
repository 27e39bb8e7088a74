//! Domain XML documents (libvirt's format, kept lossless), their validation and the per-user store.
