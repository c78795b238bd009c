//! The server harness shared by the rewrite tests (`serve`, `serve_with`); the fakes are in
//! `lotse-test-support`.
#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;

use lotse_answer::Answerer;
use lotse_index::SearchIndex;
use lotse_inference::generate::GenerationService;
use lotse_server::simplify::SimplifyService;
use lotse_server::{AppState, Config};
use lotse_server::rewrites::RewriteStore as Store;
use lotse_simplify::{Glossary, Simplifier};
use lotse_test_support::FakeSplittingRewriter;

/// A running server over `index` with the rewrite service (fake rewriter, store at
/// `store_path`, worker started): its address, the rewriter and the store.
pub struct Served {
    pub addr: std::net::SocketAddr,
    pub rewriter: Arc<FakeSplittingRewriter>,
    pub store: Arc<Store>,
}

pub async fn serve(
    index: Arc<SearchIndex>,
    config: Config,
    store_path: &Path,
    queue: usize,
    pregenerate: bool,
) -> Served {
    serve_with(index, config, store_path, queue, pregenerate, |_| {}).await
}

/// [`serve`], with `setup` run on the state before the server starts (e.g. to add the
/// portal).
pub async fn serve_with(
    index: Arc<SearchIndex>,
    mut config: Config,
    store_path: &Path,
    queue: usize,
    pregenerate: bool,
    setup: impl FnOnce(&AppState),
) -> Served {
    let rewriter = Arc::new(FakeSplittingRewriter::new());
    config.limits.search_per_second = 0; // one client address
    let generation = Arc::new(GenerationService::new(rewriter.clone(), 1, 4));
    let answerer = Arc::new(Answerer::new(index, None, Some(generation), config.answer_config()));
    let store = Arc::new(Store::open(store_path).unwrap());
    let simplifier = Arc::new(
        Simplifier::new(rewriter.clone(), Glossary::default_terms())
            .with_legal_texts(config.simplify.legal_texts),
    );
    let busy = answerer.generation().map(|g| g.clone() as Arc<dyn lotse_server::simplify::ChatBusy>);
    let svc = SimplifyService::new(answerer.shared_index(), busy, simplifier, store.clone(), queue, pregenerate);
    svc.start_worker();
    let state = AppState::new(config);
    state.set_answerer(answerer);
    state.set_simplify(svc);
    setup(&state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(lotse_server::serve(listener, state, std::future::pending()));
    Served { addr, rewriter, store }
}
