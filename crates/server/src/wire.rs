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
}
