//! The server's integration tests, one test binary (`cargo test -p lotse-server --test it`;
//! one module: `--test it portal::`): each module was a binary of its own and linked the whole
//! stack. `login` stays a binary of its own (it measures this process's memory). Fakes and
//! fixtures come from `lotse-test-support`; the server harness shared by the rewrite tests is
//! `common`.

mod api;
mod cms;
mod common;
mod external;
mod insights;
mod oidc;
mod portal;
mod simplify;
