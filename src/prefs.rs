//! User preferences, stored under `$XDG_CONFIG_HOME/vireo/`.
