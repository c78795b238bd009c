//! Which language a question is in, and the fixed texts Lotse says in each supported language.
//!
//! Answers follow the citizen's language; sources stay as they are (German pages). Detection
//! is deliberately simple and deterministic: script first (Arabic, Cyrillic), then letters
//! and function words that separate Turkish, English and German. German is the default.

use serde::{Deserialize, Serialize};

/// A language Lotse answers in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    De,
    En,
    Tr,
    Uk,
    Ar,
}

impl Lang {
    pub const ALL: [Lang; 5] = [Lang::De, Lang::En, Lang::Tr, Lang::Uk, Lang::Ar];

    pub fn code(self) -> &'static str {
        match self {
            Lang::De => "de",
            Lang::En => "en",
            Lang::Tr => "tr",
            Lang::Uk => "uk",
            Lang::Ar => "ar",
        }
    }

    /// Parse an ISO 639-1 code (`de`, `en-GB` and `EN` work too); `None` for anything else.
    pub fn parse(code: &str) -> Option<Lang> {
        let base = code
            .trim()
            .split(['-', '_'])
            .next()
            .unwrap_or("")
            .to_ascii_lowercase();
        Lang::ALL.into_iter().find(|l| l.code() == base)
    }

    /// The language's name in German, for the instruction to the model.
    pub fn name_de(self) -> &'static str {
        match self {
            Lang::De => "Deutsch",
            Lang::En => "Englisch",
            Lang::Tr => "Türkisch",
            Lang::Uk => "Ukrainisch",
            Lang::Ar => "Arabisch",
        }
    }

    /// Text direction for the widget.
    pub fn rtl(self) -> bool {
        self == Lang::Ar
    }

    /// The short hint under every answer.
    pub fn check_hint(self) -> &'static str {
        match self {
            Lang::De => "KI-generiert. Bitte prüfen Sie die Angaben in der verlinkten Quelle.",
            Lang::En => "KI-generiert (AI-generated). Please check the details in the linked source.",
            Lang::Tr => "KI-generiert (yapay zekâ tarafından üretildi). Lütfen bilgileri bağlantılı kaynakta kontrol edin.",
            Lang::Uk => "KI-generiert (створено ШІ). Будь ласка, перевірте дані у вказаному джерелі.",
            Lang::Ar => "KI-generiert (مُنشأ بالذكاء الاصطناعي). يُرجى التحقق من المعلومات في المصدر المرفق.",
        }
    }

    /// The opening of a refusal: the website does not answer this.
    pub fn refusal_opening(self, town: &str) -> String {
        match self {
            Lang::De => format!(
                "Dazu finde ich auf der Website der {town} leider keine verlässliche Antwort. Ich möchte Ihnen nichts Falsches sagen."
            ),
            Lang::En => format!(
                "I'm sorry, I cannot find a reliable answer to this on the website of {town}. I do not want to tell you anything wrong."
            ),
            Lang::Tr => format!(
                "Üzgünüm, {town} web sitesinde bu konuda güvenilir bir yanıt bulamadım. Size yanlış bilgi vermek istemiyorum."
            ),
            Lang::Uk => format!(
                "На жаль, я не знайшов на вебсайті {town} надійної відповіді на це питання. Я не хочу повідомити вам щось неправильне."
            ),
            Lang::Ar => format!(
                "عذرًا، لم أجد إجابة موثوقة على هذا السؤال في موقع {town}. لا أريد أن أقدم لك معلومات خاطئة."
            ),
        }
    }

    /// The framing sentence of an extractive answer: the source's own words follow (in
    /// German, the binding wording).
    pub fn quote_lead(self, title: &str) -> String {
        match self {
            Lang::De => format!("In „{title}“ steht dazu:"),
            Lang::En => format!("The source “{title}” says (in German, the binding wording):"),
            Lang::Tr => format!("“{title}” kaynağında (bağlayıcı Almanca metin) şöyle yazıyor:"),
            Lang::Uk => format!("У джерелі «{title}» (обов'язкове німецьке формулювання) сказано:"),
            Lang::Ar => format!("ورد في المصدر «{title}» (النص الألماني الملزم):"),
        }
    }

    /// The answer when the model's text could not be backed by the passages: instead of
    /// unsupported statements, point to the page found (`title`, cited as `[1]`).
    pub fn pointer_text(self, title: &str) -> String {
        match self {
            Lang::De => format!(
                "Eine genaue Antwort kann ich aus den Seiten nicht sicher belegen. Am ehesten hilft Ihnen diese Seite weiter: „{title}“ [1]."
            ),
            Lang::En => format!(
                "I cannot back an exact answer with the pages I found. This page is the most likely to help you: “{title}” [1]."
            ),
            Lang::Tr => format!(
                "Kesin bir yanıtı bulduğum sayfalarla doğrulayamıyorum. Size en çok şu sayfa yardımcı olabilir: “{title}” [1]."
            ),
            Lang::Uk => format!(
                "Я не можу підтвердити точну відповідь знайденими сторінками. Найімовірніше, вам допоможе ця сторінка: «{title}» [1]."
            ),
            Lang::Ar => format!(
                "لا أستطيع تأكيد إجابة دقيقة من الصفحات التي وجدتها. قد تساعدك هذه الصفحة أكثر من غيرها: «{title}» [1]."
            ),
        }
    }

    /// "Please contact:" and the labels of the contact details.
    pub fn contact_words(self) -> ContactWords {
        match self {
            Lang::De => ContactWords {
                lead: "Bitte wenden Sie sich direkt an",
                phone: "Telefon",
                email: "E-Mail",
                hours: "Öffnungszeiten",
            },
            Lang::En => ContactWords {
                lead: "Please contact",
                phone: "phone",
                email: "e-mail",
                hours: "opening hours",
            },
            Lang::Tr => ContactWords {
                lead: "Lütfen doğrudan şu adrese başvurun:",
                phone: "telefon",
                email: "e-posta",
                hours: "çalışma saatleri",
            },
            Lang::Uk => ContactWords {
                lead: "Будь ласка, зверніться безпосередньо до",
                phone: "телефон",
                email: "e-mail",
                hours: "години роботи",
            },
            Lang::Ar => ContactWords {
                lead: "يُرجى التواصل مباشرة مع",
                phone: "الهاتف",
                email: "البريد الإلكتروني",
                hours: "أوقات العمل",
            },
        }
    }
}

/// Labels for the contact sentence of a refusal.
#[derive(Debug, Clone, Copy)]
pub struct ContactWords {
    pub lead: &'static str,
    pub phone: &'static str,
    pub email: &'static str,
    pub hours: &'static str,
}

const EN_WORDS: &[&str] = &[
    "the", "what", "how", "is", "are", "do", "does", "can", "where", "when", "who", "which", "i",
    "my", "of", "for", "to", "in", "a", "an", "have", "need", "much", "there", "you", "it",
    "with", "and", "or", "should", "must", "get", "be",
];
const DE_WORDS: &[&str] = &[
    "der", "die", "das", "ist", "sind", "wie", "was", "wo", "wann", "wer", "ich", "mein",
    "meine", "kann", "und", "oder", "für", "ein", "eine", "einen", "zu", "im", "in", "mit",
    "muss", "gibt", "es", "es", "den", "dem", "des", "bei", "auf", "wird", "werden", "darf",
    "man", "welche", "welcher", "nicht", "von", "an",
];
const TR_WORDS: &[&str] = &[
    "ne", "nasıl", "nasil", "için", "icin", "mi", "mı", "mu", "mü", "bir", "ve", "nerede",
    "kaç", "kac", "ne zaman", "hangi", "var", "yok", "ben", "benim", "belediye", "ücret",
    "nedir", "miyim", "mıyım", "gerekiyor",
];

/// Guess the language of a question. German unless the evidence for another is clear.
pub fn detect(text: &str) -> Lang {
    let mut arabic = 0usize;
    let mut cyrillic = 0usize;
    let mut letters = 0usize;
    let mut turkish_letters = 0usize;
    for c in text.chars() {
        if c.is_alphabetic() {
            letters += 1;
        }
        match c {
            '\u{0600}'..='\u{06FF}' | '\u{0750}'..='\u{077F}' | '\u{FB50}'..='\u{FDFF}' => {
                arabic += 1
            }
            '\u{0400}'..='\u{04FF}' => cyrillic += 1,
            'ğ' | 'Ğ' | 'ş' | 'Ş' | 'ı' | 'İ' => turkish_letters += 1,
            _ => {}
        }
    }
    if letters > 0 && arabic * 3 >= letters {
        return Lang::Ar;
    }
    if letters > 0 && cyrillic * 3 >= letters {
        return Lang::Uk;
    }
    let lower = text.to_lowercase();
    let words: Vec<&str> = lower
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    let count = |list: &[&str]| words.iter().filter(|w| list.contains(w)).count();
    let (en, de, tr) = (count(EN_WORDS), count(DE_WORDS), count(TR_WORDS));
    if turkish_letters > 0 || (tr > de && tr > en) {
        return Lang::Tr;
    }
    // German letters are strong evidence for German
    let umlauts = lower.chars().filter(|c| "äöüß".contains(*c)).count();
    if en > de + umlauts && en >= 2 {
        return Lang::En;
    }
    Lang::De
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_the_supported_languages() {
        assert_eq!(detect("Wie viel kostet ein Hundesteuer-Bescheid?"), Lang::De);
        assert_eq!(detect("Werden Fahrtkosten zu Feuerwehrlehrgängen erstattet?"), Lang::De);
        assert_eq!(detect("How much is the dog tax in Bad Boll?"), Lang::En);
        assert_eq!(detect("What are the opening hours of the library?"), Lang::En);
        assert_eq!(detect("Köpek vergisi ne kadar?"), Lang::Tr);
        assert_eq!(detect("Kütüphane ne zaman açık?"), Lang::Tr);
        assert_eq!(detect("Скільки коштує податок на собаку?"), Lang::Uk);
        assert_eq!(detect("كم تبلغ ضريبة الكلاب؟"), Lang::Ar);
        // a German question with an English loan word stays German
        assert_eq!(detect("Wo finde ich das Update für die App?"), Lang::De);
    }

    #[test]
    fn parses_codes() {
        assert_eq!(Lang::parse("EN-gb"), Some(Lang::En));
        assert_eq!(Lang::parse("uk"), Some(Lang::Uk));
        assert_eq!(Lang::parse("xx"), None);
        assert_eq!(Lang::parse(""), None);
    }
}
