//! The prompt-too-long policy: fitting a conversation and its completion into the context.
//!
//! In order, stopping as soon as the prompt fits beside the protected completion budget
//! (`min(max_tokens, context / 2)` tokens):
//! 1. drop the oldest messages that are neither system messages nor the last user message
//!    (nor anything after it);
//! 2. cut the middle out of the longest remaining message (by tokens, marked with `[…]`),
//!    repeating with the then-longest message a few times if needed;
//! 3. reduce `max_tokens` to what the context has left (at least 1);
//! 4. last resort, when the prompt alone still fills the context (a tiny context or a huge
//!    template): keep only the last `context - 1` prompt tokens, which hold the start of the
//!    assistant's turn.
//!
//! Any of 1, 2 and 4 sets `prompt_truncated`. Nothing here fails on long input.

use crate::{ChatMessage, Result, Role};

/// Replaces the middle of a cut message.
pub(crate) const CUT_MARKER: &str = "\n[…]\n";
/// Tokens allowed for the marker and for re-tokenisation at the cut edges.
const CUT_SLACK: usize = 8;
/// At most this many middle cuts before giving up and shrinking `max_tokens`.
const MAX_CUT_ROUNDS: usize = 8;

/// Turns conversations into prompt tokens (template + tokenizer).
pub(crate) trait PromptCodec {
    /// The rendered chat prompt, tokenised.
    fn encode_prompt(&self, messages: &[ChatMessage]) -> Result<Vec<u32>>;
    /// Plain text, tokenised without special tokens.
    fn encode_text(&self, text: &str) -> Result<Vec<u32>>;
    fn decode_text(&self, ids: &[u32]) -> Result<String>;
}

#[derive(Debug, Clone)]
pub(crate) struct FittedPrompt {
    pub(crate) tokens: Vec<u32>,
    /// The messages the prompt was rendered from (after dropping and cutting).
    pub(crate) messages: Vec<ChatMessage>,
    pub(crate) max_tokens: usize,
    pub(crate) truncated: bool,
}

pub(crate) fn fit_prompt(
    codec: &dyn PromptCodec,
    messages: &[ChatMessage],
    max_tokens: usize,
    context_len: usize,
) -> Result<FittedPrompt> {
    let context_len = context_len.max(2);
    let max_tokens = max_tokens.max(1);
    let budget = context_len - max_tokens.min(context_len / 2);
    let mut messages = messages.to_vec();
    let mut tokens = codec.encode_prompt(&messages)?;
    let mut truncated = false;

    // 1. Drop the oldest droppable messages.
    while tokens.len() > budget {
        let Some(last_user) = messages.iter().rposition(|m| m.role == Role::User) else {
            break;
        };
        let Some(oldest) = messages[..last_user]
            .iter()
            .position(|m| m.role != Role::System)
        else {
            break;
        };
        messages.remove(oldest);
        truncated = true;
        tokens = codec.encode_prompt(&messages)?;
    }

    // 2. Cut the middle of the longest message.
    for _ in 0..MAX_CUT_ROUNDS {
        if tokens.len() <= budget {
            break;
        }
        let excess = tokens.len() - budget;
        let mut longest: Option<(usize, Vec<u32>)> = None;
        for (i, m) in messages.iter().enumerate() {
            let ids = codec.encode_text(&m.content)?;
            if longest.as_ref().is_none_or(|(_, l)| ids.len() > l.len()) {
                longest = Some((i, ids));
            }
        }
        let Some((index, ids)) = longest else { break };
        if ids.len() <= CUT_SLACK {
            break;
        }
        let keep = ids.len().saturating_sub(excess + CUT_SLACK);
        let head = keep.div_ceil(2);
        let tail = keep - head;
        let head_text = codec.decode_text(&ids[..head])?;
        let tail_text = codec.decode_text(&ids[ids.len() - tail..])?;
        // A cut inside a multi-byte character decodes to U+FFFD: drop it.
        let cut = format!(
            "{}{CUT_MARKER}{}",
            head_text.trim_end_matches('\u{FFFD}'),
            tail_text.trim_start_matches('\u{FFFD}')
        );
        if cut.len() >= messages[index].content.len() {
            break;
        }
        messages[index].content = cut;
        truncated = true;
        tokens = codec.encode_prompt(&messages)?;
    }

    // 3. Shrink the completion to what is left; 4. or keep the prompt's end.
    let available = context_len.saturating_sub(tokens.len());
    let max_tokens = if available >= 1 {
        max_tokens.min(available)
    } else {
        tokens.drain(..tokens.len() - (context_len - 1));
        truncated = true;
        1
    };
    Ok(FittedPrompt {
        tokens,
        messages,
        max_tokens,
        truncated,
    })
}
