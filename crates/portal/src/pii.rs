//! The PII guard for German text: finds personal data before a text leaves the house (an
//! external model) or reaches a log.
//!
//! Detectors are patterns with checks where the format has one (IBAN mod 97, tax ID check
//! digit) and context words where the pattern alone is ambiguous (a date is a date of birth
//! only after "geboren", "geb." or "Geburtsdatum"). Names are recognised after a salutation or
//! title ("Frau Dr. Weber"), after a label ("Name: ..."), or as a common first name followed
//! by a capitalised word. The guard errs on the side of blocking: a false alarm costs the
//! staff member a local model instead of an external one; a miss sends personal data out.

use std::sync::OnceLock;

use regex::Regex;
use serde::Serialize;

/// A kind of personal data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PiiKind {
    Email,
    Phone,
    Iban,
    TaxId,
    SocialInsurance,
    IdCard,
    DateOfBirth,
    Address,
    LicencePlate,
    Name,
}

impl PiiKind {
    pub const ALL: [PiiKind; 10] = [
        PiiKind::Email,
        PiiKind::Phone,
        PiiKind::Iban,
        PiiKind::TaxId,
        PiiKind::SocialInsurance,
        PiiKind::IdCard,
        PiiKind::DateOfBirth,
        PiiKind::Address,
        PiiKind::LicencePlate,
        PiiKind::Name,
    ];

    /// Stable key (`email`, `tax_id`, ...), as in the test set.
    pub fn key(self) -> &'static str {
        match self {
            PiiKind::Email => "email",
            PiiKind::Phone => "phone",
            PiiKind::Iban => "iban",
            PiiKind::TaxId => "tax_id",
            PiiKind::SocialInsurance => "social_insurance",
            PiiKind::IdCard => "id_card",
            PiiKind::DateOfBirth => "date_of_birth",
            PiiKind::Address => "address",
            PiiKind::LicencePlate => "licence_plate",
            PiiKind::Name => "name",
        }
    }

    pub fn from_key(key: &str) -> Option<PiiKind> {
        PiiKind::ALL.into_iter().find(|k| k.key() == key)
    }

    /// German name, for the message that tells a staff member why a text was stopped.
    pub fn label_de(self) -> &'static str {
        match self {
            PiiKind::Email => "E-Mail-Adresse",
            PiiKind::Phone => "Telefonnummer",
            PiiKind::Iban => "IBAN",
            PiiKind::TaxId => "Steuernummer oder Steuer-ID",
            PiiKind::SocialInsurance => "Sozialversicherungsnummer",
            PiiKind::IdCard => "Ausweisnummer",
            PiiKind::DateOfBirth => "Geburtsdatum",
            PiiKind::Address => "Anschrift",
            PiiKind::LicencePlate => "Kfz-Kennzeichen",
            PiiKind::Name => "Personenname",
        }
    }
}

/// One finding: what kind, and where (byte offsets into the text).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub kind: PiiKind,
    pub start: usize,
    pub end: usize,
}

struct Patterns {
    email: Regex,
    phone: Regex,
    iban: Regex,
    tax_id: Regex,
    tax_number: Regex,
    social: Regex,
    id_card: Regex,
    id_context: Regex,
    birth: Regex,
    address: Regex,
    postcode_city: Regex,
    plate: Regex,
    plate_spaced: Regex,
    salutation: Regex,
    label_name: Regex,
    first_last: Regex,
}

const MONTHS: &str = "Januar|Februar|März|Maerz|April|Mai|Juni|Juli|August|September|Oktober|November|Dezember|Jan\\.|Feb\\.|Mär\\.|Apr\\.|Jun\\.|Jul\\.|Aug\\.|Sep\\.|Sept\\.|Okt\\.|Nov\\.|Dez\\.";

/// Common German first names (given names of people born 1940-2015), for "Vorname Nachname".
const FIRST_NAMES: &[&str] = &[
    "Alexander", "Andrea", "Andreas", "Angelika", "Anja", "Anna", "Anne", "Annette", "Antje",
    "Barbara", "Bernd", "Bettina", "Birgit", "Brigitte", "Carina", "Carsten", "Christa",
    "Christian", "Christina", "Christine", "Claudia", "Daniel", "Daniela", "David", "Dennis",
    "Dieter", "Dirk", "Doris", "Elena", "Elisabeth", "Emma", "Erika", "Felix", "Finn", "Frank",
    "Franziska", "Gabriele", "Gerhard", "Gisela", "Günter", "Hannah", "Hans", "Heike", "Heinz",
    "Helga", "Helmut", "Ingrid", "Jan", "Jana", "Jens", "Johanna", "Jonas", "Jörg", "Julia",
    "Jürgen", "Karin", "Karl", "Katharina", "Kathrin", "Klaus", "Kerstin", "Lara", "Laura",
    "Lea", "Leon", "Lena", "Lisa", "Lukas", "Manfred", "Manuela", "Marco", "Maria", "Marie",
    "Mario", "Markus", "Martin", "Martina", "Matthias", "Max", "Maximilian", "Melanie",
    "Michael", "Michaela", "Mia", "Monika", "Nadine", "Nicole", "Niklas", "Nina", "Olaf",
    "Oliver", "Patrick", "Paul", "Peter", "Petra", "Philipp", "Ralf", "Renate", "Robert",
    "Sabine", "Sandra", "Sarah", "Sebastian", "Silke", "Simone", "Sophie", "Stefan", "Stefanie",
    "Steffen", "Susanne", "Sven", "Tanja", "Thomas", "Tim", "Tobias", "Torsten", "Ursula",
    "Uwe", "Ute", "Werner", "Wolfgang", "Yvonne",
];

fn patterns() -> &'static Patterns {
    static P: OnceLock<Patterns> = OnceLock::new();
    P.get_or_init(|| {
        let re = |s: &str| Regex::new(s).expect("PII pattern");
        let first = FIRST_NAMES.join("|");
        Patterns {
            email: re(r"(?i)\b[a-z0-9._%+-]+(?:@|\s?\(at\)\s?|\s\[at\]\s)[a-z0-9.-]+\.[a-z]{2,}\b"),
            // +49 / 0049 / 0, area code, subscriber number; separators space, slash, hyphen
            phone: re(r"(?:\+49|\b0049|\(0|\b0)(?:[\s/\-\(\)]{0,3}\d){5,14}\b"),
            iban: re(r"\b[A-Z]{2}\d{2}(?:\s?[A-Z0-9]{4}){2,7}(?:\s?[A-Z0-9]{1,4})?\b"),
            tax_id: re(r"\b\d{2}\s?\d{3}\s?\d{3}\s?\d{3}\b"),
            tax_number: re(r"(?i)(?:steuer\s?nummer|st\.?-?nr\.?)\s*:?\s*\d{2,3}\s?/\s?\d{3,4}\s?/\s?\d{4,5}\b|\b\d{2,3}/\d{3,4}/\d{4,5}\b"),
            // area (2 digits), birth date DDMMYY, initial of the birth name, serial, check digit
            social: re(r"\b\d{2}\s?[0-3]\d[01]\d{3}\s?[A-Z]\s?\d{2}\s?\d\b"),
            id_card: re(r"\b[CFGHJKLMNPRTVWXYZ][CFGHJKLMNPRTVWXYZ0-9]{8}\d?\b"),
            id_context: re(r"(?i)(ausweis|reisepass|pass-?nummer|passnummer|dokumentennummer|ausweisnummer)"),
            birth: re(&format!(
                r"(?i)(?:geboren|geb\.|geburtsdatum|geburtstag|geb\.-datum|\*)\s*(?:am|den)?\s*:?\s*(?:\d{{1,2}}\.\s?\d{{1,2}}\.\s?(?:\d{{4}}|\d{{2}})|\d{{1,2}}\.\s?(?:{MONTHS})\s?\d{{4}}|\d{{4}}-\d{{2}}-\d{{2}})"
            )),
            address: re(r"\b[A-ZÄÖÜ][a-zäöüß\-]*(?:straße|strasse|str\.|weg|gasse|platz|allee|ring|damm|ufer|pfad|steige|chaussee|markt)\s+\d{1,4}\s?[a-zA-Z]?\b|\b(?:Am|An der|Im|In der|Auf der|Zum|Zur)\s+[A-ZÄÖÜ][a-zäöüß]+\s+\d{1,4}\s?[a-z]?\b,?\s*\d{5}"),
            postcode_city: re(r"\b\d{5}\s+[A-ZÄÖÜ][a-zäöüß]+(?:[\s\-][A-ZÄÖÜ][a-zäöüß]+)?\b"),
            plate: re(r"\b[A-ZÄÖÜ]{1,3}-[A-Z]{1,2}\s?\d{1,4}[EH]?\b"),
            plate_spaced: re(r"(?i:kennzeichen|kfz|fahrzeug|auto|pkw)[^.]{0,30}?\b[A-ZÄÖÜ]{1,3}\s[A-Z]{1,2}\s\d{1,4}[EH]?\b"),
            salutation: re(r"\b(?:Herrn?|Frau|Dr\.|Prof\.|Familie)\s+(?:(?:Dr|Prof)\.\s+)?(?:von\s+|van\s+|de\s+)?[A-ZÄÖÜ][a-zäöüß]+(?:-[A-ZÄÖÜ][a-zäöüß]+)?(?:\s+[A-ZÄÖÜ][a-zäöüß]+)?"),
            label_name: re(r"(?i:\b(?:name|vorname|nachname|antragsteller(?:in)?|ansprechpartner(?:in)?|sachbearbeiter(?:in)?|mieter(?:in)?|patient(?:in)?)\s*:\s*)[A-ZÄÖÜ][a-zäöüß]+"),
            first_last: re(&format!(r"\b(?:{first})\s+(?:[A-ZÄÖÜ]\.\s+)?[A-ZÄÖÜ][a-zäöüß]+(?:-[A-ZÄÖÜ][a-zäöüß]+)?\b")),
        }
    })
}

/// Words that follow a salutation but are no name ("Frau Bürgermeisterin" still names a
/// person's office, so only a few generic words are excluded).
const NOT_NAMES: &[&str] = &[
    "Herr", "Frau", "Damen", "Herren", "Kollegin", "Kollege", "Kolleginnen", "Kollegen",
];

/// Words that end a "first name + capitalised word" match without a name: the capitalised
/// word is a noun, not a surname ("Maria Himmelfahrt", "Max Mustermann" stays a name).
const NOT_SURNAMES: &[&str] = &[
    "Himmelfahrt", "Geburt", "Schule", "Kirche", "Straße", "Strasse", "Platz", "Weg", "Haus",
    "Kindergarten", "Stift", "Gymnasium", "Realschule", "Grundschule", "Apotheke", "Klinik",
    "Halle", "Preis", "Stiftung", "Verein", "Umzug", "Markt", "Fest", "Laternenlauf", "Tag",
];

fn iban_valid(s: &str) -> bool {
    let compact: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    if !(15..=34).contains(&compact.len()) {
        return false;
    }
    let (head, tail) = compact.split_at(4);
    let mut rem: u32 = 0;
    for c in tail.chars().chain(head.chars()) {
        let v = match c {
            '0'..='9' => c as u32 - '0' as u32,
            'A'..='Z' => c as u32 - 'A' as u32 + 10,
            _ => return false,
        };
        let digits = if v >= 10 { 2 } else { 1 };
        rem = (rem * if digits == 2 { 100 } else { 10 } + v) % 97;
    }
    rem == 1
}

/// The check digit of the German tax identification number (ISO 7064, MOD 11,10).
fn tax_id_valid(s: &str) -> bool {
    let d: Vec<u32> = s.chars().filter_map(|c| c.to_digit(10)).collect();
    if d.len() != 11 || d[0] == 0 {
        return false;
    }
    let mut product = 10;
    for &x in &d[..10] {
        let mut sum = (x + product) % 10;
        if sum == 0 {
            sum = 10;
        }
        product = (sum * 2) % 11;
    }
    let check = (11 - product) % 10;
    check == d[10]
}

fn digits(s: &str) -> usize {
    s.chars().filter(char::is_ascii_digit).count()
}

/// Find personal data in `text`. Findings are sorted by position and do not overlap (the
/// first, longest finding wins).
pub fn find(text: &str) -> Vec<Finding> {
    let p = patterns();
    let mut out: Vec<Finding> = Vec::new();
    let mut push = |kind: PiiKind, start: usize, end: usize| out.push(Finding { kind, start, end });

    for m in p.email.find_iter(text) {
        push(PiiKind::Email, m.start(), m.end());
    }
    for m in p.iban.find_iter(text) {
        if iban_valid(m.as_str()) {
            push(PiiKind::Iban, m.start(), m.end());
        }
    }
    for m in p.tax_id.find_iter(text) {
        if tax_id_valid(m.as_str()) {
            push(PiiKind::TaxId, m.start(), m.end());
        }
    }
    for m in p.tax_number.find_iter(text) {
        push(PiiKind::TaxId, m.start(), m.end());
    }
    for m in p.social.find_iter(text) {
        push(PiiKind::SocialInsurance, m.start(), m.end());
    }
    if p.id_context.is_match(text) {
        for m in p.id_card.find_iter(text) {
            // a number, not a word in capitals: some digits and some letters
            let d = digits(m.as_str());
            if (1..m.as_str().len()).contains(&d) {
                push(PiiKind::IdCard, m.start(), m.end());
            }
        }
    }
    for m in p.birth.find_iter(text) {
        push(PiiKind::DateOfBirth, m.start(), m.end());
    }
    for m in p.phone.find_iter(text) {
        let s = m.as_str();
        let n = digits(s);
        // dates (01.02.2024), amounts and years have other separators or too few digits
        if (6..=15).contains(&n) && !s.contains('.') {
            push(PiiKind::Phone, m.start(), m.end());
        }
    }
    for m in p.address.find_iter(text) {
        push(PiiKind::Address, m.start(), m.end());
    }
    for m in p.plate.find_iter(text) {
        push(PiiKind::LicencePlate, m.start(), m.end());
    }
    for m in p.plate_spaced.find_iter(text) {
        push(PiiKind::LicencePlate, m.start(), m.end());
    }
    for m in p.salutation.find_iter(text) {
        let words: Vec<&str> = m.as_str().split_whitespace().collect();
        let last = words.last().copied().unwrap_or("");
        if words.len() >= 2 && !NOT_NAMES.contains(&last) {
            push(PiiKind::Name, m.start(), m.end());
        }
    }
    for m in p.label_name.find_iter(text) {
        push(PiiKind::Name, m.start(), m.end());
    }
    for m in p.first_last.find_iter(text) {
        let last = m.as_str().split_whitespace().last().unwrap_or("");
        if !NOT_SURNAMES.contains(&last) {
            push(PiiKind::Name, m.start(), m.end());
        }
    }
    // a postcode with a town after an address is part of it; alone it is no personal data
    let addresses: Vec<(usize, usize)> = out
        .iter()
        .filter(|f| f.kind == PiiKind::Address)
        .map(|f| (f.start, f.end))
        .collect();
    for m in p.postcode_city.find_iter(text) {
        if addresses.iter().any(|&(_, e)| m.start() >= e && m.start() - e <= 3) {
            out.push(Finding {
                kind: PiiKind::Address,
                start: m.start(),
                end: m.end(),
            });
        }
    }

    out.sort_by(|a, b| a.start.cmp(&b.start).then(b.end.cmp(&a.end)));
    let mut kept: Vec<Finding> = Vec::with_capacity(out.len());
    for f in out {
        match kept.last_mut() {
            Some(prev) if f.start < prev.end => {
                // same kind overlapping: merge; another kind: the earlier (longer) one stays
                if f.kind == prev.kind {
                    prev.end = prev.end.max(f.end);
                }
            }
            _ => kept.push(f),
        }
    }
    kept
}

/// Whether `text` contains personal data.
pub fn contains_pii(text: &str) -> bool {
    !find(text).is_empty()
}

/// The kinds found in `text`, each once, in a fixed order.
pub fn kinds(text: &str) -> Vec<PiiKind> {
    let mut k: Vec<PiiKind> = find(text).into_iter().map(|f| f.kind).collect();
    k.sort();
    k.dedup();
    k
}

/// `text` with every finding replaced by `[kind]`, e.g. `[email]`: safe to log or to store
/// in an audit log that must not hold personal data.
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for f in find(text) {
        out.push_str(&text[at..f.start]);
        out.push('[');
        out.push_str(f.kind.key());
        out.push(']');
        at = f.end;
    }
    out.push_str(&text[at..]);
    out
}

/// A German sentence telling a staff member why a text may not go to an external model.
pub fn refusal_de(kinds: &[PiiKind]) -> String {
    let names: Vec<&str> = kinds.iter().map(|k| k.label_de()).collect();
    format!(
        "Ihre Eingabe enthält vermutlich personenbezogene Daten ({}). Nach dem KI-Kompass dürfen solche Daten nicht an externe KI-Dienste gehen. Entfernen Sie die Angaben oder wählen Sie ein lokales Modell.",
        names.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksums() {
        assert!(iban_valid("DE89 3704 0044 0532 0130 00"));
        assert!(!iban_valid("DE89 3704 0044 0532 0130 01"));
        assert!(tax_id_valid("86095742719"));
        assert!(!tax_id_valid("86095742718"));
    }

    #[test]
    fn redaction_replaces_each_finding() {
        let r = redact("Bitte an max.muster@example.org oder 0171 2345678 schreiben.");
        assert_eq!(r, "Bitte an [email] oder [phone] schreiben.");
    }

    #[test]
    fn plain_administrative_text_passes() {
        for s in [
            "Die Satzung tritt am 01.01.2025 in Kraft.",
            "Die Gebühr beträgt 25,00 Euro je angefangene Stunde.",
            "Nach § 5 Abs. 2 der Gemeindeordnung entscheidet der Gemeinderat.",
            "Die Hauptstraße ist von Montag bis Freitag gesperrt.",
        ] {
            assert!(find(s).is_empty(), "{s}: {:?}", find(s));
        }
    }
}
