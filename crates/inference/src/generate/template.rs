//! Chat templates: the GGUF's `tokenizer.chat_template` (Jinja) rendered with minijinja the
//! way Hugging Face's `apply_chat_template` does it, or a ChatML fallback.
//!
//! The template decides the whole prompt, system prompt included: when the caller gives no
//! system message, the model's stock system prompt (if its template has one) stays. Qwen2.5
//! follows instructions better that way, with the instructions in the user turn.

use minijinja::{Environment, ErrorKind, context};
use serde::Serialize;

use crate::{ChatMessage, InferenceError, Result, Role};

/// ChatML, for GGUF files without a chat template.
pub const CHATML_TEMPLATE: &str = "{%- for message in messages %}\
{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' }}\
{%- endfor %}\
{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}";

const TEMPLATE_NAME: &str = "chat";

/// A compiled chat template plus the special-token strings templates refer to.
pub struct ChatTemplate {
    env: Environment<'static>,
    bos_token: String,
    eos_token: String,
    /// True when the GGUF had no template and ChatML is used.
    fallback: bool,
}

impl std::fmt::Debug for ChatTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatTemplate")
            .field("bos_token", &self.bos_token)
            .field("eos_token", &self.eos_token)
            .field("fallback", &self.fallback)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize)]
struct TemplateMessage<'a> {
    role: &'static str,
    content: &'a str,
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::System => "system",
        Role::User => "user",
        Role::Assistant => "assistant",
    }
}

impl ChatTemplate {
    /// Compile `source` (a Jinja chat template), or ChatML when `source` is `None`.
    pub fn new(
        source: Option<&str>,
        bos_token: impl Into<String>,
        eos_token: impl Into<String>,
    ) -> Result<ChatTemplate> {
        let fallback = source.is_none();
        let source = source.unwrap_or(CHATML_TEMPLATE).to_string();
        let mut env = Environment::new();
        // Hugging Face renders chat templates with trim_blocks and lstrip_blocks.
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        // Python string and dict methods (`.strip()`, `.items()`, ...) used by many templates.
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function("raise_exception", raise_exception);
        env.add_function("strftime_now", strftime_now);
        env.add_template_owned(TEMPLATE_NAME, source)
            .map_err(|e| InferenceError::Template(e.to_string()))?;
        Ok(ChatTemplate {
            env,
            bos_token: bos_token.into(),
            eos_token: eos_token.into(),
            fallback,
        })
    }

    /// True when the model file had no chat template and ChatML is used instead.
    pub fn is_fallback(&self) -> bool {
        self.fallback
    }

    /// The prompt for `messages`, ending with the opening of the assistant's turn
    /// (`add_generation_prompt = true`).
    pub fn render(&self, messages: &[ChatMessage]) -> Result<String> {
        let messages: Vec<TemplateMessage<'_>> = messages
            .iter()
            .map(|m| TemplateMessage {
                role: role_name(m.role),
                content: &m.content,
            })
            .collect();
        let template = self
            .env
            .get_template(TEMPLATE_NAME)
            .map_err(|e| InferenceError::Template(e.to_string()))?;
        template
            .render(context! {
                messages => messages,
                add_generation_prompt => true,
                bos_token => &self.bos_token,
                eos_token => &self.eos_token,
            })
            .map_err(|e| InferenceError::Template(e.to_string()))
    }
}

/// `raise_exception(msg)`: templates use it to reject unsupported conversations.
fn raise_exception(msg: String) -> std::result::Result<String, minijinja::Error> {
    Err(minijinja::Error::new(ErrorKind::InvalidOperation, msg))
}

/// `strftime_now(format)` (used by Llama 3 templates for the date), in UTC.
fn strftime_now(format: String) -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    strftime(&format, secs)
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// A small `strftime` over a Unix time (UTC): `%Y %m %d %B %b %H %M %S %y %%`; other
/// directives are copied as written.
fn strftime(format: &str, unix_secs: u64) -> String {
    let secs_of_day = unix_secs % 86_400;
    let date = i64::try_from(unix_secs)
        .ok()
        .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
        .map_or(time::Date::MAX, |t| t.date());
    let (year, month, day) = (date.year(), u8::from(date.month()), date.day());
    let month_name = MONTHS[usize::from(month).saturating_sub(1).min(11)];
    let mut out = String::new();
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('Y') => out.push_str(&year.to_string()),
            Some('y') => out.push_str(&format!("{:02}", year.rem_euclid(100))),
            Some('m') => out.push_str(&format!("{month:02}")),
            Some('d') => out.push_str(&format!("{day:02}")),
            Some('B') => out.push_str(month_name),
            Some('b') => out.push_str(&month_name[..3]),
            Some('H') => out.push_str(&format!("{:02}", secs_of_day / 3600)),
            Some('M') => out.push_str(&format!("{:02}", secs_of_day / 60 % 60)),
            Some('S') => out.push_str(&format!("{:02}", secs_of_day % 60)),
            Some('%') => out.push('%'),
            Some(other) => {
                out.push('%');
                out.push(other);
            }
            None => out.push('%'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate::testutil::QWEN_LIKE_TEMPLATE;

    #[test]
    fn chatml_fallback_renders_generation_prompt() {
        let t = ChatTemplate::new(None, "", "<|im_end|>").unwrap();
        assert!(t.is_fallback());
        let out = t
            .render(&[
                ChatMessage::system("Sei kurz."),
                ChatMessage::user("Hallo?"),
            ])
            .unwrap();
        assert_eq!(
            out,
            "<|im_start|>system\nSei kurz.<|im_end|>\n<|im_start|>user\nHallo?<|im_end|>\n<|im_start|>assistant\n"
        );
    }

    #[test]
    fn stock_system_prompt_is_kept_when_caller_gives_none() {
        let t = ChatTemplate::new(Some(QWEN_LIKE_TEMPLATE), "", "<|im_end|>").unwrap();
        let out = t
            .render(&[ChatMessage::user("Wo ist das Rathaus?")])
            .unwrap();
        assert_eq!(
            out,
            "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n\
             <|im_start|>user\nWo ist das Rathaus?<|im_end|>\n<|im_start|>assistant\n"
        );
        let out = t
            .render(&[
                ChatMessage::system("Antworte auf Deutsch."),
                ChatMessage::user("Hi"),
            ])
            .unwrap();
        assert!(out.starts_with("<|im_start|>system\nAntworte auf Deutsch.<|im_end|>\n"));
        assert!(!out.contains("helpful assistant"));
    }

    #[test]
    fn template_features_used_by_real_models() {
        // trim_blocks/lstrip_blocks, pycompat methods, raise_exception, bos/eos variables.
        let source = "{{ bos_token }}{% for m in messages %}\n  {% if m.role == 'assistant' %}\
                      {{ raise_exception('no assistant turns') }}{% endif %}\n\
                      [{{ m.role.upper() }}] {{ m.content.strip() }}{{ eos_token }}\n{% endfor %}";
        let t = ChatTemplate::new(Some(source), "<s>", "</s>").unwrap();
        let out = t.render(&[ChatMessage::user("  Hallo  ")]).unwrap();
        assert_eq!(out, "<s>[USER] Hallo</s>\n");
        let err = t
            .render(&[ChatMessage {
                role: Role::Assistant,
                content: "x".into(),
            }])
            .unwrap_err();
        assert!(err.to_string().contains("no assistant turns"), "{err}");
    }

    #[test]
    fn broken_template_is_a_clean_error() {
        let err = ChatTemplate::new(Some("{% for %}"), "", "").unwrap_err();
        assert!(matches!(err, InferenceError::Template(_)), "{err}");
    }

    #[test]
    fn strftime_formats_dates() {
        // 2024-02-29 13:05:09 UTC
        let t = 1_709_211_909;
        assert_eq!(
            strftime("%d %b %Y, %H:%M:%S %%", t),
            "29 Feb 2024, 13:05:09 %"
        );
        assert_eq!(strftime("%B %m %y", t), "February 02 24");
        assert_eq!(strftime("%Y-%m-%d %H:%M:%S", 0), "1970-01-01 00:00:00");
    }
}
