//! Domain types -> wire types (`lotse_wire`): the JSON the API sends is the wire crate's, so
//! the domain crates carry no OpenAPI derives and the widget reads exactly what is sent.
//! Free functions, not `From` impls: neither side of each conversion is this crate's type.
//! A page in Einfache Sprache is served as the simplify crate serialises it (no copy on the
//! cached path); a test here keeps that JSON equal to `lotse_wire::simplify::SimplifiedPage`.

use lotse_wire as w;

pub fn speaker(s: lotse_answer::Speaker) -> w::Speaker {
    match s {
        lotse_answer::Speaker::User => w::Speaker::User,
        lotse_answer::Speaker::Assistant => w::Speaker::Assistant,
    }
}

/// A citizen's question as the answerer takes it.
pub fn answer_request(r: w::AnswerRequest) -> lotse_answer::AnswerRequest {
    lotse_answer::AnswerRequest {
        question: r.question,
        history: r
            .history
            .into_iter()
            .map(|t| lotse_answer::Turn {
                role: match t.role {
                    w::Speaker::User => lotse_answer::Speaker::User,
                    w::Speaker::Assistant => lotse_answer::Speaker::Assistant,
                },
                content: t.content,
            })
            .collect(),
        lang: r.lang,
    }
}

pub fn lang(l: lotse_answer::Lang) -> w::Lang {
    use lotse_answer::Lang as L;
    match l {
        L::De => w::Lang::De,
        L::En => w::Lang::En,
        L::Tr => w::Lang::Tr,
        L::Uk => w::Lang::Uk,
        L::Ar => w::Lang::Ar,
    }
}

pub fn asked(k: lotse_answer::AskedKind) -> w::AskedKind {
    use lotse_answer::AskedKind as K;
    match k {
        K::Amount => w::AskedKind::Amount,
        K::DateTime => w::AskedKind::DateTime,
        K::Period => w::AskedKind::Period,
        K::Office => w::AskedKind::Office,
        K::YesNo => w::AskedKind::YesNo,
        K::Other => w::AskedKind::Other,
    }
}

pub fn source(s: &lotse_answer::Source) -> w::Source {
    w::Source {
        n: s.n,
        url: s.url.clone(),
        title: s.title.clone(),
        heading: s.heading.clone(),
        deep_link: s.deep_link.clone(),
        cited: s.cited,
    }
}

pub fn sources(s: &[lotse_answer::Source]) -> Vec<w::Source> {
    s.iter().map(source).collect()
}

pub fn quote(q: &lotse_answer::Quote) -> w::Quote {
    w::Quote { n: q.n, text: q.text.clone(), url: q.url.clone() }
}

pub fn quotes(q: &[lotse_answer::Quote]) -> Vec<w::Quote> {
    q.iter().map(quote).collect()
}

pub fn timings(t: &lotse_answer::Timings) -> w::Timings {
    w::Timings {
        retrieval_ms: t.retrieval_ms,
        first_token_ms: t.first_token_ms,
        total_ms: t.total_ms,
        prompt_tokens: t.prompt_tokens,
        cached_prompt_tokens: t.cached_prompt_tokens,
        completion_tokens: t.completion_tokens,
        cached: t.cached,
    }
}

/// A checked answer as the API sends it (JSON response and the stream's `done` event).
pub fn answer(a: &lotse_answer::Answer) -> w::Answer {
    w::Answer {
        id: a.id.clone(),
        answer: a.answer.clone(),
        sources: sources(&a.sources),
        refused: a.refused,
        label: a.label.clone(),
        hint: a.hint.clone(),
        lang: lang(a.lang),
        model: a.model.clone(),
        flagged: a.flagged,
        fallback: a.fallback,
        extractive: a.extractive,
        quotes: quotes(&a.quotes),
        asked: asked(a.asked),
        timings: timings(&a.timings),
    }
}

/// The staff portal's domain types (`lotse_portal`) -> `lotse_wire::portal` and
/// `lotse_wire::insights`; request bodies the other way (`*_in`). By value: the handlers
/// hand over what the store returned.
pub mod portal {
    use lotse_wire::insights as wi;
    use lotse_wire::portal as wp;

    pub fn role(x: lotse_portal::auth::Role) -> wp::Role {
        use lotse_portal::auth::Role as D;
        match x {
            D::Staff => wp::Role::Staff,
            D::Editor => wp::Role::Editor,
            D::Admin => wp::Role::Admin,
        }
    }

    pub fn level(x: lotse_portal::auth::Level) -> wp::Level {
        use lotse_portal::auth::Level as D;
        match x {
            D::None => wp::Level::None,
            D::Seepferdchen => wp::Level::Seepferdchen,
            D::Bronze => wp::Level::Bronze,
            D::Silber => wp::Level::Silber,
            D::Gold => wp::Level::Gold,
        }
    }

    pub fn scope(x: lotse_portal::auth::Scope) -> wp::Scope {
        use lotse_portal::auth::Scope as D;
        match x {
            D::Simplify => wp::Scope::Simplify,
            D::Refresh => wp::Scope::Refresh,
            D::Chat => wp::Scope::Chat,
            D::Documents => wp::Scope::Documents,
        }
    }

    pub fn owner(x: lotse_portal::auth::Owner) -> wp::Owner {
        use lotse_portal::auth::Owner as D;
        match x {
            D::Group(x) => wp::Owner::Group(x),
            D::User(x) => wp::Owner::User(x),
        }
    }

    pub fn user_info(x: lotse_portal::auth::UserInfo) -> wp::UserInfo {
        wp::UserInfo {
            id: x.id,
            name: x.name,
            display_name: x.display_name,
            role: role(x.role),
            level: level(x.level),
            groups: x.groups,
        }
    }

    pub fn collection(x: lotse_portal::store::Collection) -> wp::Collection {
        wp::Collection {
            id: x.id,
            title: x.title,
            owner: owner(x.owner),
            created_at: x.created_at,
            documents: x.documents,
        }
    }

    pub fn document(x: lotse_portal::store::Document) -> wp::Document {
        wp::Document {
            id: x.id,
            collection_id: x.collection_id,
            file_name: x.file_name,
            kind: x.kind,
            title: x.title,
            sha256: x.sha256,
            bytes: x.bytes,
            n_chunks: x.n_chunks,
            uploaded_at: x.uploaded_at,
            url: x.url,
        }
    }

    pub fn token_info(x: lotse_portal::store::TokenInfo) -> wp::TokenInfo {
        wp::TokenInfo {
            id: x.id,
            name: x.name,
            user: x.user,
            scopes: x.scopes.into_iter().map(scope).collect(),
            created_at: x.created_at,
            last_used_at: x.last_used_at,
            expires_at: x.expires_at,
        }
    }

    pub fn chat_summary(x: lotse_portal::store::ChatSummary) -> wp::ChatSummary {
        wp::ChatSummary {
            id: x.id,
            title: x.title,
            created_at: x.created_at,
            updated_at: x.updated_at,
        }
    }

    pub fn chat_message(x: lotse_portal::store::ChatMessage) -> wp::ChatMessage {
        wp::ChatMessage {
            role: x.role,
            content: x.content,
            sources: x.sources,
            model: x.model,
            at: x.at,
        }
    }

    pub fn prompt(x: lotse_portal::store::Prompt) -> wp::Prompt {
        wp::Prompt {
            id: x.id,
            title: x.title,
            body: x.body,
            tags: x.tags,
            group: x.group,
            owner: x.owner,
            variables: x.variables,
        }
    }

    pub fn audit_record(x: lotse_portal::store::AuditRecord) -> wp::AuditRecord {
        wp::AuditRecord {
            id: x.id,
            at: x.at,
            user: x.user,
            groups: x.groups,
            action: x.action,
            model: x.model,
            external: x.external,
            collections: x.collections,
            prompt_tokens: x.prompt_tokens,
            completion_tokens: x.completion_tokens,
            outcome: x.outcome,
            content: x.content,
            target: x.target,
        }
    }

    pub fn usage(x: lotse_portal::store::Usage) -> wp::Usage {
        wp::Usage {
            group: x.group,
            model: x.model,
            requests: x.requests,
            prompt_tokens: x.prompt_tokens,
            completion_tokens: x.completion_tokens,
        }
    }

    pub fn register_entry(x: lotse_portal::store::RegisterEntry) -> wp::RegisterEntry {
        wp::RegisterEntry {
            name: x.name,
            model: x.model,
            purpose: x.purpose,
            provider: x.provider,
            risk_class: x.risk_class,
            responsible: x.responsible,
            updated_at: x.updated_at,
        }
    }

    pub fn public_check(x: lotse_portal::kompass::PublicCheck) -> wp::PublicCheck {
        wp::PublicCheck {
            pass_ratio: x.pass_ratio,
            level: level(x.level),
            questions: x.questions.into_iter().map(public_question).collect(),
        }
    }

    pub fn public_question(x: lotse_portal::kompass::PublicQuestion) -> wp::PublicQuestion {
        wp::PublicQuestion {
            text: x.text,
            options: x.options,
        }
    }

    pub fn graded(x: lotse_portal::kompass::Graded) -> wp::Graded {
        wp::Graded {
            passed: x.passed,
            right: x.right,
            total: x.total,
            wrong: x.wrong,
            level: level(x.level),
        }
    }

    pub fn outcome(x: lotse_portal::insights::Outcome) -> wi::Outcome {
        use lotse_portal::insights::Outcome as D;
        match x {
            D::Answered => wi::Outcome::Answered,
            D::Hedged => wi::Outcome::Hedged,
            D::Refused => wi::Outcome::Refused,
            D::RatedDown => wi::Outcome::RatedDown,
        }
    }

    pub fn sample(x: lotse_portal::insights::Sample) -> wi::Sample {
        wi::Sample {
            id: x.id,
            day: x.day,
            question: x.question,
            outcome: outcome(x.outcome),
        }
    }

    pub fn topic(x: lotse_portal::insights::Topic) -> wi::Topic {
        wi::Topic {
            id: x.id,
            label: x.label,
            questions: x.questions,
            answered: x.answered,
            hedged: x.hedged,
            refused: x.refused,
            rated_down: x.rated_down,
            weeks: x.weeks,
            samples: x.samples.into_iter().map(sample).collect(),
            hedged_page: x.hedged_page,
            done: x.done,
            asked_since_done: x.asked_since_done,
            answered_since_done: x.answered_since_done,
        }
    }

    // ---- request bodies: wire -> domain ----

    pub fn role_in(x: wp::Role) -> lotse_portal::auth::Role {
        use lotse_portal::auth::Role as D;
        match x {
            wp::Role::Staff => D::Staff,
            wp::Role::Editor => D::Editor,
            wp::Role::Admin => D::Admin,
        }
    }

    pub fn level_in(x: wp::Level) -> lotse_portal::auth::Level {
        use lotse_portal::auth::Level as D;
        match x {
            wp::Level::None => D::None,
            wp::Level::Seepferdchen => D::Seepferdchen,
            wp::Level::Bronze => D::Bronze,
            wp::Level::Silber => D::Silber,
            wp::Level::Gold => D::Gold,
        }
    }

    pub fn scope_in(x: wp::Scope) -> lotse_portal::auth::Scope {
        use lotse_portal::auth::Scope as D;
        match x {
            wp::Scope::Simplify => D::Simplify,
            wp::Scope::Refresh => D::Refresh,
            wp::Scope::Chat => D::Chat,
            wp::Scope::Documents => D::Documents,
        }
    }

    pub fn owner_in(x: wp::Owner) -> lotse_portal::auth::Owner {
        use lotse_portal::auth::Owner as D;
        match x {
            wp::Owner::Group(g) => D::Group(g),
            wp::Owner::User(u) => D::User(u),
        }
    }

    pub fn register_entry_in(x: wp::RegisterEntry) -> lotse_portal::store::RegisterEntry {
        lotse_portal::store::RegisterEntry {
            name: x.name,
            model: x.model,
            purpose: x.purpose,
            provider: x.provider,
            risk_class: x.risk_class,
            responsible: x.responsible,
            updated_at: x.updated_at,
        }
    }
}

/// The review of rewrites of legal texts: `lotse_simplify`'s decisions <-> `lotse_wire::reviews`.
pub mod reviews {
    use lotse_simplify as d;
    use lotse_wire::reviews as wr;
    use lotse_wire::simplify::ReviewStatus;

    pub fn status(s: d::ReviewStatus) -> ReviewStatus {
        match s {
            d::ReviewStatus::Pending => ReviewStatus::Pending,
            d::ReviewStatus::Approved => ReviewStatus::Approved,
            d::ReviewStatus::Rejected => ReviewStatus::Rejected,
        }
    }

    pub fn status_in(s: ReviewStatus) -> d::ReviewStatus {
        match s {
            ReviewStatus::Pending => d::ReviewStatus::Pending,
            ReviewStatus::Approved => d::ReviewStatus::Approved,
            ReviewStatus::Rejected => d::ReviewStatus::Rejected,
        }
    }

    pub fn correction(c: d::BlockCorrection) -> wr::BlockCorrection {
        wr::BlockCorrection { index: c.index, text: c.text }
    }

    pub fn correction_in(c: wr::BlockCorrection) -> d::BlockCorrection {
        d::BlockCorrection { index: c.index, text: c.text }
    }

    pub fn decision(x: d::ReviewDecision) -> wr::ReviewDecision {
        wr::ReviewDecision {
            key: x.key,
            url: x.url,
            status: status(x.status),
            reviewer: x.reviewer,
            decided_at: x.decided_at,
            corrections: x.corrections.into_iter().map(correction).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The domain's own serde form and the wire form are the same JSON: stored answers and
    /// the API agree.
    #[test]
    fn an_answer_serialises_as_its_wire_type() {
        let a: lotse_answer::Answer = serde_json::from_value(serde_json::json!({
            "id": "x", "answer": "Die Steuer beträgt 5 € [1].",
            "sources": [{"n": 1, "url": "u", "title": "t", "heading": "h", "deep_link": "u#a", "cited": true}],
            "refused": false, "label": "KI-generiert", "hint": "h", "lang": "de", "model": "m",
            "flagged": false, "fallback": false, "extractive": true,
            "quotes": [{"n": 1, "text": "5 €", "url": "u#q"}], "asked": "amount",
            "timings": {"retrieval_ms": 1, "first_token_ms": 2, "total_ms": 3, "prompt_tokens": 4,
                        "cached_prompt_tokens": 5, "completion_tokens": 6, "cached": false}
        }))
        .unwrap();
        assert_eq!(serde_json::to_value(answer(&a)).unwrap(), serde_json::to_value(&a).unwrap());
    }

    #[test]
    fn a_simplified_page_serialises_as_its_wire_type() {
        let block = serde_json::json!({"type": "heading", "level": 2, "text": "Gebühren", "anchor": "g"});
        let readability = serde_json::json!({"flesch_amstad": 50.0, "wstf1": 8.0, "lix": 40.0, "sentences": 2, "words": 20});
        let page: lotse_simplify::SimplifiedPage = serde_json::from_value(serde_json::json!({
            "url": "u", "title": "t", "label": "KI-generiert", "original_url": "u", "html": "<h2>Gebühren</h2>",
            "text": "Gebühren", "blocks": [{"index": 0, "kind": "heading", "status": "rules_only",
                "original": block, "simplified": block, "problems": ["x"], "correction": "edited"}],
            "readability": {"before": readability, "after": readability, "flesch_gain": 0.0},
            "summary": {"blocks": 1, "simplified": 0, "partial": 0, "rules_only": 1, "not_simplified": 0,
                        "units_rewritten": 0, "units": 0, "retries": 0, "units_cached": 0},
            "explained_terms": ["Satzung"], "model": "m", "rules_version": "r", "content_hash": "h",
            "generated_at": 1, "duration_ms": 2, "legal_text": true,
            "review": {"status": "approved", "message": "geprüft"}
        }))
        .unwrap();
        let domain = serde_json::to_value(&page).unwrap();
        let wire: lotse_wire::simplify::SimplifiedPage = serde_json::from_value(domain.clone()).unwrap();
        assert_eq!(serde_json::to_value(&wire).unwrap(), domain);
    }

    /// The portal's domain types and their wire types serialise to the same JSON (the API did
    /// not change when the handlers began to convert).
    #[test]
    fn portal_types_serialise_as_their_wire_types() {
        use lotse_portal::auth::{Level, Owner, Role};
        let u = lotse_portal::auth::UserInfo { id: 7, name: "m".into(), display_name: "M".into(), role: Role::Editor, level: Level::Silber, groups: vec!["bauamt".into()] };
        assert_eq!(serde_json::to_value(portal::user_info(u.clone())).unwrap(), serde_json::to_value(&u).unwrap());
        let c = lotse_portal::store::Collection { id: 1, title: "t".into(), owner: Owner::Group("g".into()), created_at: 2, documents: 3 };
        assert_eq!(serde_json::to_value(portal::collection(c.clone())).unwrap(), serde_json::to_value(&c).unwrap());
        let d = lotse_simplify::ReviewDecision {
            key: "k".into(), url: "u".into(), status: lotse_simplify::ReviewStatus::Approved, reviewer: "r".into(), decided_at: 9,
            corrections: vec![lotse_simplify::BlockCorrection { index: 2, text: None }],
        };
        assert_eq!(serde_json::to_value(reviews::decision(d.clone())).unwrap(), serde_json::to_value(&d).unwrap());
    }
}
