//! The result as an HTML fragment (the page's structure, the label, a link to the original)
//! and as plain text with one sentence per line, as plain-language layout asks.

use lotse_core::Block;

use lotse_text::sentences;
use crate::{BlockStatus, LABEL, SimplifiedPage};

/// Shown above a block that could not be simplified safely.
const NOT_SIMPLIFIED_DE: &str =
    "Dieser Abschnitt konnte nicht sicher vereinfacht werden. Hier steht der Originaltext.";

/// Escape text for HTML content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Sentences of a rewritten text, each on its own line.
fn lines(text: &str) -> Vec<String> {
    text.lines().flat_map(sentences).collect()
}

/// A rewritten paragraph as HTML: one sentence a line (`<br>`), and a run of lines that
/// begin with "- " (the grounds of an enacting formula, a model's enumeration) as a real
/// list, which a screen reader announces as one.
fn paragraph_html(text: &str) -> String {
    // runs of list items (true) and of sentences (false), in order
    let mut runs: Vec<(bool, Vec<String>)> = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let (is_item, pieces) = match line.strip_prefix("- ") {
            Some(item) => (true, vec![escape(item.trim())]),
            None => (false, sentences(line).iter().map(|s| escape(s)).collect()),
        };
        match runs.last_mut() {
            Some((kind, run)) if *kind == is_item => run.extend(pieces),
            _ => runs.push((is_item, pieces)),
        }
    }
    if runs.is_empty() {
        return "<p></p>".into();
    }
    runs.into_iter()
        .map(|(is_item, run)| {
            if is_item {
                format!("<ul><li>{}</li></ul>", run.join("</li><li>"))
            } else {
                format!("<p>{}</p>", run.join("<br>\n"))
            }
        })
        .collect()
}

fn status_attr(status: BlockStatus) -> &'static str {
    match status {
        BlockStatus::Simplified => "simplified",
        BlockStatus::Partial => "partial",
        BlockStatus::RulesOnly => "rules_only",
        BlockStatus::NotSimplified => "not_simplified",
    }
}

/// The HTML fragment.
pub fn html(page: &SimplifiedPage) -> String {
    let url = escape(&page.original_url);
    let label = LABEL.replace(
        "Originaltext.",
        &format!("<a href=\"{url}\">Originaltext</a>."),
    );
    let mut out = format!(
        "<div class=\"lotse-einfach\" lang=\"de\">\n<p class=\"lotse-label\">{label}</p>\n"
    );
    if let Some(note) = &page.review {
        out.push_str(&format!(
            "<p class=\"lotse-review\" data-review=\"{}\">{}</p>\n",
            note.status.key(),
            escape(&note.message)
        ));
    }
    for b in &page.blocks {
        let status = status_attr(b.status);
        let mut inner = String::new();
        let block = &b.simplified;
        match block {
            Block::Heading { level, text, .. } => {
                let l = (*level).clamp(1, 6);
                inner.push_str(&format!("<h{l}>{}</h{l}>", escape(text)));
            }
            Block::Paragraph { text } => {
                if b.status == BlockStatus::NotSimplified {
                    inner.push_str(&format!("<p>{}</p>", escape(text)));
                } else {
                    inner.push_str(&paragraph_html(text));
                }
            }
            Block::List { ordered, items } => {
                let tag = if *ordered { "ol" } else { "ul" };
                inner.push_str(&format!("<{tag}>"));
                for i in items {
                    inner.push_str(&format!("<li>{}</li>", escape(i).replace('\n', "<br>")));
                }
                inner.push_str(&format!("</{tag}>"));
            }
            Block::Table { rows } => {
                inner.push_str("<table>");
                for (r, row) in rows.iter().enumerate() {
                    let cell = if r == 0 { "th" } else { "td" };
                    inner.push_str("<tr>");
                    for c in row {
                        inner.push_str(&format!("<{cell}>{}</{cell}>", escape(c)));
                    }
                    inner.push_str("</tr>");
                }
                inner.push_str("</table>");
            }
        }
        if b.status == BlockStatus::NotSimplified && !matches!(block, Block::Heading { .. }) {
            out.push_str(&format!(
                "<div class=\"lotse-original\" data-status=\"{status}\"><p class=\"lotse-note\">{NOT_SIMPLIFIED_DE}</p>{inner}</div>\n"
            ));
        } else {
            // a block staff wrote themselves says so (data-corrected="edited")
            let corrected = match b.correction {
                Some(crate::Correction::Edited) => " data-corrected=\"edited\"",
                Some(crate::Correction::Rules) => " data-corrected=\"rules\"",
                None => "",
            };
            out.push_str(&format!(
                "<div data-status=\"{status}\"{corrected}>{inner}</div>\n"
            ));
        }
    }
    out.push_str("</div>\n");
    out
}

/// The plain text: the label first, blocks separated by blank lines.
pub fn text(page: &SimplifiedPage) -> String {
    let mut parts = vec![format!("{LABEL} ({})", page.original_url)];
    if let Some(note) = &page.review {
        parts.push(note.message.clone());
    }
    for b in &page.blocks {
        parts.push(match &b.simplified {
            Block::Heading { text, .. } => text.clone(),
            Block::Paragraph { text } => lines(text).join("\n"),
            Block::List { items, .. } => items
                .iter()
                .map(|i| format!("- {}", i.replace('\n', " ")))
                .collect::<Vec<_>>()
                .join("\n"),
            Block::Table { rows } => rows
                .iter()
                .map(|r| r.join(" | "))
                .collect::<Vec<_>>()
                .join("\n"),
        });
    }
    parts.join("\n\n") + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_beginning_with_a_dash_become_a_list() {
        let html = paragraph_html(
            "Der Gemeinderat hat diese Satzung beschlossen. Sie gilt ab Mai.\n\
             Die Grundlagen dafür sind:\n- Paragraf 4 der <GemO>\n- Paragraf 2 des KAG\nMehr nicht.",
        );
        assert_eq!(
            html,
            "<p>Der Gemeinderat hat diese Satzung beschlossen.<br>\nSie gilt ab Mai.<br>\n\
             Die Grundlagen dafür sind:</p><ul><li>Paragraf 4 der &lt;GemO&gt;</li>\
             <li>Paragraf 2 des KAG</li></ul><p>Mehr nicht.</p>"
        );
        assert_eq!(paragraph_html("Nur ein Satz."), "<p>Nur ein Satz.</p>");
        // a minus sign in a sentence is no list
        assert_eq!(paragraph_html("Es gilt 3 - 2."), "<p>Es gilt 3 - 2.</p>");
    }
}
