//! The PII guard for German text: finds personal data before a text leaves the house (an
//! external model) or reaches a log.
//!
//! Detectors are patterns, with checks where a format has one (tax ID check digit) and
//! context words where the pattern alone is ambiguous (a date is a date of birth only after
//! "geboren", "geb." or "Geburtsdatum"; a number is a file number only after "Az.",
//! "Kundennummer" and the like). Names are recognised after a salutation or title in any
//! case ("Frau Dr. Weber", "frau müller", "Hr. Yılmaz"), after a label ("Name: ..."), after a
//! role noun ("Kollegin Maier"), or as a common first name followed by a capitalised word.
//!
//! The guard errs on the side of blocking: a false alarm costs the staff member a local model
//! instead of an external one; a miss sends personal data out. So formats are accepted
//! without their checksum (a mistyped IBAN is still an IBAN), titles and names in any case,
//! and phone numbers from any country. What passes on purpose: a postcode with a town alone
//! (a place, not a person), a switchboard number ending in "-0" (the town's own number), a
//! file-plan number without a case part ("Aktenzeichen 022.31"), dates without a birth
//! context, and salutation words used as plain nouns ("Frau und Mann", "Herr der Lage",
//! "eine Frau hat angerufen").

use std::sync::OnceLock;

use regex::{Captures, Regex};
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
    /// A file number (Aktenzeichen, Geschäftszeichen), customer, case, staff or payment
    /// reference: it points to one person's file.
    FileNumber,
    Name,
}

impl PiiKind {
    pub const ALL: [PiiKind; 11] = [
        PiiKind::Email,
        PiiKind::Phone,
        PiiKind::Iban,
        PiiKind::TaxId,
        PiiKind::SocialInsurance,
        PiiKind::IdCard,
        PiiKind::DateOfBirth,
        PiiKind::Address,
        PiiKind::LicencePlate,
        PiiKind::FileNumber,
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
            PiiKind::FileNumber => "file_number",
            PiiKind::Name => "name",
        }
    }

    pub fn from_key(key: &str) -> Option<PiiKind> {
        PiiKind::ALL.into_iter().find(|k| k.key() == key)
    }

    /// The placeholder that stands for it in a redacted text ([`redact_de`]).
    pub fn placeholder_de(self) -> &'static str {
        match self {
            PiiKind::Email => "[E-Mail]",
            PiiKind::Phone => "[Telefon]",
            PiiKind::Iban => "[IBAN]",
            PiiKind::TaxId => "[Steuernummer]",
            PiiKind::SocialInsurance => "[Sozialversicherungsnummer]",
            PiiKind::IdCard => "[Ausweisnummer]",
            PiiKind::DateOfBirth => "[Geburtsdatum]",
            PiiKind::Address => "[Adresse]",
            PiiKind::LicencePlate => "[Kennzeichen]",
            PiiKind::FileNumber => "[Aktenzeichen]",
            PiiKind::Name => "[Name]",
        }
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
            PiiKind::FileNumber => "Aktenzeichen, Kunden- oder Vorgangsnummer",
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
    phone_label: Regex,
    iban_start: Regex,
    iban_loose: Regex,
    iban_label: Regex,
    tax_id: Regex,
    tax_number: Regex,
    tax_label: Regex,
    social: Regex,
    id_card: Regex,
    id_context: Regex,
    birth: Regex,
    birth_after: Regex,
    birth_year: Regex,
    street_word: Regex,
    street_two: Regex,
    street_prefix: Regex,
    address_context: Regex,
    house_tail: Regex,
    postcode_city: Regex,
    plate: Regex,
    plate_spaced: Regex,
    plate_label: Regex,
    file_label: Regex,
    court_file: Regex,
    title: Regex,
    label_name: Regex,
    role_name: Regex,
    called: Regex,
    maiden: Regex,
    first_last: Regex,
    first_last_lower: Regex,
}

const MONTHS: &str = "Januar|Februar|März|Maerz|April|Mai|Juni|Juli|August|September|Oktober|November|Dezember|Jan\\.|Feb\\.|Mär\\.|Apr\\.|Jun\\.|Jul\\.|Aug\\.|Sep\\.|Sept\\.|Okt\\.|Nov\\.|Dez\\.";

/// Common first names of people living in Germany (German ones born 1930-2020 and frequent
/// Turkish, Arabic, Polish, Russian, Ukrainian, Balkan, Italian, Greek and Vietnamese ones),
/// for "Vorname Nachname" without a salutation. Names that are also ordinary German words
/// ("Ernst", "Mark", "Rosa") are left out.
const FIRST_NAMES: &[&str] = &[
    "Achim", "Agnieszka", "Ahmad", "Ahmed", "Ahmet", "Albert", "Aleksandra", "Alexander",
    "Alfred", "Ali", "Amir", "Ana", "Anastasia", "Andre", "André", "Andrea", "Andreas",
    "Andrii", "Andrzej", "Angelika", "Anja", "Anna", "Anne", "Annette", "Anton", "Antje",
    "Antonia", "Axel", "Ayse", "Ayşe", "Aylin", "Barbara", "Beate", "Ben", "Benjamin",
    "Bernd", "Bernhard", "Bettina", "Birgit", "Björn", "Brigitte", "Britta", "Can", "Carina",
    "Carsten", "Cem", "Charlotte", "Christa", "Christel", "Christian", "Christina",
    "Christine", "Christoph", "Clara", "Claudia", "Dagmar", "Daniel", "Daniela", "David",
    "Deniz", "Dennis", "Detlef", "Dieter", "Dimitrios", "Dirk", "Dmitri", "Dominik", "Doris",
    "Dragan", "Edith", "Elena", "Elias", "Elif", "Elisabeth", "Ella", "Emil", "Emily",
    "Emine", "Emir", "Emma", "Emre", "Erich", "Erika", "Eva", "Fabian", "Fatima", "Fatma",
    "Felix", "Finn", "Florian", "Francesca", "Frank", "Franziska", "Frieda", "Friedrich",
    "Fritz", "Gabriele", "Georg", "Georgios", "Gerd", "Gerhard", "Gertrud", "Giovanni",
    "Gisela", "Giuseppe", "Greta", "Gudrun", "Günter", "Günther", "Hamid", "Hannah",
    "Hannelore", "Hans", "Harald", "Hartmut", "Hasan", "Hatice", "Heidi", "Heike",
    "Heinrich", "Heinz", "Helga", "Helmut", "Hendrik", "Herbert", "Hermann", "Hildegard",
    "Holger", "Horst", "Hüseyin", "Ibrahim", "İbrahim", "Ida", "Ilse", "Inge", "Ingo",
    "Ingrid", "Irina", "Irmgard", "Ivan", "Jakob", "Jan", "Jana", "Jannik", "Jelena",
    "Jennifer", "Jens", "Jessica", "Joachim", "Jochen", "Johann", "Johanna", "Jonas",
    "Josef", "Jörg", "Julia", "Jürgen", "Jutta", "Kai", "Karim", "Karin", "Karl",
    "Katarzyna", "Katharina", "Kathrin", "Katrin", "Kemal", "Kerstin", "Kevin", "Kirsten",
    "Klaus", "Kurt", "Lara", "Lars", "Laura", "Lea", "Leila", "Lena", "Leo", "Leon", "Leonie",
    "Leyla", "Lina", "Linus", "Lisa", "Lothar", "Luca", "Ludwig", "Luis", "Luisa", "Luise",
    "Lukas", "Malte", "Manfred", "Manuela", "Marc", "Marcel", "Marco", "Marek", "Maren",
    "Margarete", "Maria", "Marianne", "Marie", "Marina", "Mario", "Marion", "Markus",
    "Marlene", "Martin", "Martina", "Mathias", "Mats", "Matthias", "Max", "Maximilian",
    "Mehmet", "Melanie", "Merve", "Mia", "Michael", "Michaela", "Mila", "Minh", "Mirko",
    "Miriam", "Mohamed", "Mohammad", "Mohammed", "Monika", "Moritz", "Muhammad", "Murat",
    "Mustafa", "Nadine", "Nadja", "Natalia", "Natalja", "Nico", "Nicole", "Niklas", "Nikola",
    "Nils", "Nina", "Noah", "Nora", "Norbert", "Nour", "Oksana", "Olaf", "Ole", "Olena",
    "Olga", "Oliver", "Omar", "Osman", "Oskar", "Otto", "Ömer", "Pascal", "Patrick", "Paul",
    "Paula", "Peter", "Petra", "Philipp", "Pia", "Piotr", "Rafael", "Rainer", "Ralf",
    "Ramona", "Rania", "Regina", "Reinhard", "Renate", "René", "Reza", "Rita", "Robert",
    "Rolf", "Rudolf", "Sabine", "Samir", "Samuel", "Sandra", "Sarah", "Sascha", "Sebastian",
    "Sergej", "Siegfried", "Sigrid", "Silke", "Simon", "Simone", "Sofia", "Sonja", "Sophie",
    "Stefan", "Stefanie", "Steffen", "Stephanie", "Susanne", "Svenja", "Sven", "Svetlana",
    "Swetlana", "Tanja", "Tatjana", "Theo", "Thomas", "Thorsten", "Tim", "Timo", "Tina",
    "Tobias", "Tom", "Tomasz", "Torsten", "Ulf", "Ulrich", "Ursula", "Ute", "Uwe", "Valentin",
    "Vanessa", "Vasyl", "Vera", "Verena", "Viktor", "Vincent", "Walter", "Werner", "Wiebke",
    "Wiktor", "Wilhelm", "Wolfgang", "Yuliia", "Yusuf", "Yvonne", "Zeynep", "Zoe",
];

/// First names that are also lowercase German or English words ("max. 5", "frank und
/// frei", "we can"): not matched when typed in lowercase.
const FIRST_NAMES_NOT_LOWER: &[&str] = &["max", "frank", "can", "ben", "kai", "tim", "ole"];

/// The street words a street name ends with ("Hauptstraße", "Hauptstr.", "Kirchweg") or
/// that follow an adjective or a place name ("Lange Straße", "Berliner Ring").
const STREET_SUFFIX: &str = r"straße|strasse|str\.|str\b|weg|gasse|gässle|platz|allee|ring|damm|ufer|pfad|steige|steig|stieg|chaussee|markt|graben|wall|anger|kamp|twiete|promenade|zeile|hof|berg|gärten|winkel";

/// Compounds that end like a street but name something else ("Parkplatz 3", "Bahnhof 2").
const NOT_STREETS: &[&str] = &[
    "arbeitsplatz", "ausbildungsplatz", "bauplatz", "kindergartenplatz", "kitaplatz",
    "krippenplatz", "liegeplatz", "parkplatz", "sitzplatz", "spielplatz", "sportplatz",
    "standplatz", "stellplatz", "studienplatz", "dienstweg", "fluchtweg", "rechtsweg",
    "rettungsweg", "verwaltungsweg", "arbeitsmarkt", "baumarkt", "binnenmarkt", "supermarkt",
    "weihnachtsmarkt", "wochenmarkt", "wohnungsmarkt", "bahnhof", "bauhof", "betriebshof",
    "busbahnhof", "friedhof", "gasthof", "hauptbahnhof", "hinterhof", "innenhof",
    "recyclinghof", "schulhof", "wertstoffhof", "bauernhof", "bundesstraße", "landesstraße",
    "kreisstraße", "staatsstraße", "gemeindestraße", "ortsstraße", "einbahnstraße",
    "spielstraße", "anliegerstraße", "erschließungsstraße", "wohnstraße", "fahrradstraße",
];

/// Nouns after "am", "im", "in der" ... that are no street: "im Raum 214", "am Montag 3",
/// "in der Kalenderwoche 14".
const NOT_PLACES: &[&str] = &[
    "jahr", "jahre", "jahren", "raum", "räume", "zimmer", "saal", "anlage", "abschnitt",
    "absatz", "kapitel", "teil", "punkt", "schritt", "monat", "woche", "wochen",
    "kalenderwoche", "quartal", "halbjahr", "sommer", "winter", "frühjahr", "herbst",
    "montag", "dienstag", "mittwoch", "donnerstag", "freitag", "samstag", "sonntag",
    "januar", "februar", "märz", "april", "mai", "juni", "juli", "august", "september",
    "oktober", "november", "dezember", "alter", "ende", "anfang", "durchschnitt", "schnitt",
    "gesamt", "rahmen", "bereich", "vergleich", "vorjahr", "haushalt", "haushaltsjahr",
    "stadtgebiet", "gebiet", "baugebiet", "landkreis", "kreis", "ortsteil", "gebäude",
    "erdgeschoss", "obergeschoss", "untergeschoss", "stock", "geschoss", "sitzung",
    "zeitraum", "moment", "fall", "einzelfall", "folgenden", "tag", "termin", "grundsatz",
    "vorfeld", "auftrag", "namen", "seite", "tabelle", "paragraph", "paragraf", "nummer",
    "gruppe", "klasse", "stufe", "runde", "band", "heft", "zeitpunkt", "verfahren",
    "entgeltgruppe", "pflegegrad", "gleis", "bus", "linie", "kita", "schule",
    "aktenzeichen", "geschäftszeichen", "zeichen", "antrag", "schreiben", "bescheid",
    "beschluss", "vorlage", "tagesordnungspunkt", "top",
];

/// Units and counted nouns after a number that make it no house number ("Firsthöhe 11 m").
const UNITS: &[&str] = &[
    "m", "m²", "m2", "m³", "qm", "km", "cm", "mm", "ha", "kg", "t", "l", "prozent", "euro",
    "eur", "cent", "ct", "uhr", "jahr", "jahre", "jahren", "tag", "tage", "tagen", "woche",
    "wochen", "monat", "monate", "monaten", "minuten", "min", "stunden", "std", "stück",
    "personen", "plätze", "mitglieder", "grad", "mio", "mrd", "kw", "kwh", "mal", "x",
];

/// Lowercase function words, pronouns, frequent verbs and numerals: after a salutation
/// they show that "Frau"/"Herr" is used as a plain noun ("Frau und Mann", "Herr der Lage",
/// "Frau hat angerufen"), and they are never taken as a name.
const STOP: &[&str] = &[
    "der", "die", "das", "den", "dem", "des", "ein", "eine", "einer", "einem", "einen",
    "eines", "und", "oder", "aber", "sowie", "bzw", "wie", "als", "auch", "noch", "nur",
    "schon", "sehr", "so", "ob", "wenn", "weil", "dass", "daß", "mit", "ohne", "vom", "zu",
    "zum", "zur", "im", "in", "ins", "am", "an", "ans", "auf", "aus", "bei", "beim", "für",
    "gegen", "nach", "über", "unter", "um", "vor", "hinter", "neben", "zwischen", "durch",
    "bis", "seit", "ab", "per", "pro", "je", "laut", "trotz", "wegen", "während", "ich",
    "du", "er", "sie", "es", "wir", "ihr", "ihm", "ihn", "ihnen", "ihre", "ihrer", "ihren",
    "ihrem", "ihres", "sein", "seine", "seiner", "seinen", "seinem", "sich", "uns", "euch",
    "man", "wer", "was", "welche", "welcher", "dieser", "diese", "dieses", "jeder", "jede",
    "alle", "kein", "keine", "nicht", "nie", "doch", "ja", "nein", "mal", "bitte", "danke",
    "hier", "da", "dort", "heute", "morgen", "gestern", "jetzt", "dann", "denn", "also",
    "etwa", "ca", "usw", "etc", "selbst", "allein", "alleine", "ist", "sind", "war",
    "waren", "wird", "werden", "wurde", "wurden", "hat", "haben", "hatte", "hatten", "kann",
    "können", "konnte", "muss", "müssen", "musste", "soll", "sollen", "sollte", "will",
    "wollen", "wollte", "möchte", "möchten", "darf", "dürfen", "mag", "sagt", "sagte",
    "meint", "fragt", "fragte", "bittet", "ruft", "rief", "kommt", "kam", "geht", "ging",
    "wohnt", "lebt", "arbeitet", "hätte", "wäre", "würde", "eins", "zwei", "drei", "vier",
    "fünf", "sechs", "sieben", "acht", "neun", "zehn", "es", "hallo", "liebe", "lieber",
];

/// Capitalised words after a salutation that are no name ("Damen und Herren", "Frau
/// Kollegin", "Amt für Familie Jugend und Soziales", weekday abbreviations after "Fr.").
/// "Frau Bürgermeisterin" still names a person by office and is not listed.
const NOT_NAMES: &[&str] = &[
    "herr", "herrn", "frau", "damen", "herren", "kollegin", "kollege", "kolleginnen",
    "kollegen", "jugend", "senioren", "soziales", "beruf", "kinder", "kind", "familie",
    "frauen", "männer", "mann", "pflege", "gesundheit", "bildung", "arbeit", "mo", "di",
    "mi", "do", "fr", "sa", "so", "datum",
];

/// Words before "Frau"/"Herr" that make it a plain noun ("eine Frau", "jede Familie"); a
/// lowercase word after it is then no name ("die Frau wartet"). "Liebe Frau müller" is a
/// salutation and stays a name.
const DETERMINERS: &[&str] = &[
    "der", "die", "das", "den", "dem", "des", "ein", "eine", "einer", "einem", "einen",
    "eines", "jede", "jeder", "jedem", "jeden", "jedes", "keine", "keiner", "keinem",
    "keinen", "meine", "meiner", "meinem", "meinen", "seine", "seiner", "seinem", "seinen",
    "ihre", "ihrer", "ihrem", "ihren", "unsere", "unserer", "unserem", "unseren", "deren",
    "dessen", "diese", "dieser", "diesem", "diesen", "welche", "welcher", "andere",
    "anderen", "junge", "jungen", "ältere", "älteren", "alte", "alten", "neue", "neuen",
    "betroffene", "betroffenen", "alleinerziehende", "alleinerziehenden", "schwangere",
    "erste", "ersten", "zweite", "zweiten", "nächste", "nächsten", "gleiche", "gleichen",
];

/// Titles and degrees between a salutation and the name ("Frau Dr. med. Weber").
const SECOND_TITLES: &[&str] = &[
    "dr", "prof", "med", "dent", "vet", "ing", "dipl", "rer", "nat", "jur", "phil", "habil",
    "pol", "oec", "mag", "h", "c", "univ",
];

/// Name particles ("Herr von Hohenberg", "Frau van der Berg", "Herr de la Cruz").
const PARTICLES: &[&str] = &["von", "van", "de", "del", "della", "di", "da", "dos", "du", "al", "el", "ten", "ter"];
const PARTICLES_SECOND: &[&str] = &["der", "den", "dem", "la", "le", "los", "las"];

/// Words that end a "first name + capitalised word" match without a name: the capitalised
/// word is a noun, not a surname ("Maria Himmelfahrt", "Max Mustermann" stays a name).
const NOT_SURNAMES: &[&str] = &[
    "Himmelfahrt", "Geburt", "Schule", "Kirche", "Straße", "Strasse", "Platz", "Weg", "Haus",
    "Kindergarten", "Stift", "Gymnasium", "Realschule", "Grundschule", "Apotheke", "Klinik",
    "Halle", "Preis", "Stiftung", "Verein", "Umzug", "Markt", "Fest", "Laternenlauf", "Tag",
];

/// First letters of a licence plate that are German words ("Kennzeichen ist in 3 Tagen").
const PLATE_STOP: &[&str] = &[
    "ist", "war", "hat", "im", "in", "am", "an", "auf", "aus", "bei", "mit", "für", "der",
    "die", "das", "den", "dem", "des", "nur", "ein", "bis", "vom", "zum", "zur", "und", "wie",
    "so", "da", "ab", "um",
];

/// IBAN length by country (ISO 13616 registry).
const IBAN_LENGTHS: &[(&str, usize)] = &[
    ("AD", 24), ("AE", 23), ("AL", 28), ("AT", 20), ("AZ", 28), ("BA", 20), ("BE", 16),
    ("BG", 22), ("BH", 22), ("BR", 29), ("BY", 28), ("CH", 21), ("CR", 22), ("CY", 28),
    ("CZ", 24), ("DE", 22), ("DK", 18), ("DO", 28), ("EE", 20), ("EG", 29), ("ES", 24),
    ("FI", 18), ("FO", 18), ("FR", 27), ("GB", 22), ("GE", 22), ("GI", 23), ("GL", 18),
    ("GR", 27), ("GT", 28), ("HR", 21), ("HU", 28), ("IE", 22), ("IL", 23), ("IQ", 23),
    ("IS", 26), ("IT", 27), ("JO", 30), ("KW", 30), ("KZ", 20), ("LB", 28), ("LC", 32),
    ("LI", 21), ("LT", 20), ("LU", 20), ("LV", 21), ("MC", 27), ("MD", 24), ("ME", 22),
    ("MK", 19), ("MR", 27), ("MT", 31), ("MU", 30), ("NL", 18), ("NO", 15), ("PK", 24),
    ("PL", 28), ("PS", 29), ("PT", 25), ("QA", 29), ("RO", 24), ("RS", 22), ("SA", 24),
    ("SC", 31), ("SE", 24), ("SI", 19), ("SK", 24), ("SM", 27), ("TN", 24), ("TR", 26),
    ("UA", 29), ("VA", 22), ("VG", 24), ("XK", 20),
];

fn patterns() -> &'static Patterns {
    static P: OnceLock<Patterns> = OnceLock::new();
    P.get_or_init(|| {
        let re = |s: &str| Regex::new(s).expect("PII pattern");
        let first = FIRST_NAMES.join("|");
        let first_lower = FIRST_NAMES
            .iter()
            .map(|n| n.to_lowercase())
            .filter(|n| !FIRST_NAMES_NOT_LOWER.contains(&n.as_str()))
            .collect::<Vec<_>>()
            .join("|");
        let name = r"[\p{L}\p{M}][\p{L}\p{M}'’\-]*";
        Patterns {
            // local part, "@" or "(at)"/"[at]", domain; any case
            email: re(r"(?i)\b[a-z0-9._%+-]+(?:@|\s?\(at\)\s?|\s\[at\]\s)[a-z0-9.-]+\.[a-z]{2,}\b"),
            // any country: +NN / (+NN) / 00NN, or a national number with a leading 0; then
            // digits with spaces, slashes, hyphens and parentheses ("+49 (0) 171 ...")
            phone: re(r"(?:\(\+\d{1,3}\)|\+\s?\d{1,3}|\b00[1-9]\d{0,2}|\(0|\b0)(?:[\s/\-\(\)]{0,3}\d){4,14}\b"),
            // a label, then any number of 4 or more digits ("Durchwahl 808-123")
            phone_label: re(r"(?i)\b(?:tel|telefon|telefonnummer|tel\.-nr|handy|handynummer|mobil|mobilnummer|mobiltelefon|rufnummer|rückrufnummer|durchwahl|fax|faxnummer|festnetz|festnetznummer|whatsapp)\b\.?(?:\s*-?\s*nr\.?)?\s*(?:privat|dienstlich|geschäftlich|mobil)?\s*:?\s*(\(?\+?\d[\d\s/\-\(\)]*\d)"),
            // country code and check digits, in any case, the rest is read by iban_at()
            iban_start: re(r"(?i)\b([a-z]{2}) ?(\d{2})"),
            // any country, checked by mod 97 (for countries missing from IBAN_LENGTHS)
            iban_loose: re(r"(?i)\b[a-z]{2}\d{2}(?:\s?[a-z0-9]{4}){2,7}(?:\s?[a-z0-9]{1,4})?\b"),
            // "IBAN" followed by something IBAN-shaped, whatever its length or checksum
            // (groups that hold a digit, so the next word is not taken along)
            iban_label: re(r"(?i)\biban\b\s*(?:nr\.?|nummer)?\s*:?\s*(?:lautet|ist)?\s*:?\s*[a-z]{2}\s?\d{2}(?:\s?[a-z]*\d[a-z0-9]*){2,}"),
            tax_id: re(r"\b\d{2}\s?\d{3}\s?\d{3}\s?\d{3}\b"),
            tax_number: re(r"(?i)(?:steuer\s?nummer|st\.?-?nr\.?)\s*:?\s*\d{2,3}\s?/\s?\d{3,4}\s?/\s?\d{4,5}\b|\b\d{2,3}/\d{3,4}/\d{4,5}\b"),
            // a tax label, then 8 or more digits, check digit or not
            tax_label: re(r"(?i)\b(?:steuer-?id(?:nr)?|steuer-?identifikationsnummer|steuerliche\s+identifikationsnummer|identifikationsnummer|steuer-?idnr|idnr|steuernummer|steuer-?nr|st\.?-?nr)\b\.?\s*(?:ist|lautet)?\s*:?\s*(\d[\d\s/]{6,}\d)"),
            // area (2 digits), birth date DDMMYY, initial of the birth name, serial, check digit
            social: re(r"\b\d{2}\s?[0-3]\d[01]\d{3}\s?[A-Za-z]\s?\d{2}\s?\d\b"),
            id_card: re(r"\b[CFGHJKLMNPRTVWXYZ][CFGHJKLMNPRTVWXYZ0-9]{8}\d?\b"),
            id_context: re(r"(?i)(ausweis|\bpass\b|reisepass|pass-?nummer|passnummer|pass-nr|dokumentennummer|aufenthalts|führerschein)"),
            birth: re(&format!(
                r"(?i)(?:geboren|geb\.|geburtsdatum|geburtstag|geb\.-datum|\*)\s*(?:am|den)?\s*:?\s*(?:\d{{1,2}}\.\s?\d{{1,2}}\.\s?(?:\d{{4}}|\d{{2}})|\d{{1,2}}\.\s?(?:{MONTHS})\s?\d{{4}}|\d{{4}}-\d{{2}}-\d{{2}})"
            )),
            // "am 03.05.2012 geboren"
            birth_after: re(&format!(
                r"(?i)\b(?:am\s+)?(?:\d{{1,2}}\.\s?\d{{1,2}}\.\s?(?:\d{{4}}|\d{{2}})|\d{{1,2}}\.\s?(?:{MONTHS})\s?\d{{4}})\s+geboren\b"
            )),
            // "geb. 2019", "Jahrgang 1962": the year of birth alone
            birth_year: re(r"(?i)(?:\bgeb\.|\bgeboren|\bgeburtsjahr|\bjahrgang|\bjg\.)\s*(?:im\s+jahre?\s+|in\s+)?:?\s*(?:19|20)\d{2}\b"),
            street_word: re(&format!(r"(?i)\b([\p{{L}}][\p{{L}}\-]*?(?:{STREET_SUFFIX}))\s*(\d+)")),
            street_two: re(&format!(r"(?i)\b([\p{{L}}][\p{{L}}\-]*)\s+({STREET_SUFFIX})\s*(\d+)")),
            street_prefix: re(r"(?i)\b(am|an\s+der|an\s+den|an\s+dem|im|in\s+der|in\s+den|auf\s+der|auf\s+dem|auf\s+den|zum|zur|beim|bei\s+der|hinter\s+der|hinter\s+dem|hinterm|vor\s+dem|unter\s+den|über\s+der|unterm|oberm)\s+([\p{L}][\p{L}\-]*)(?:\s+([\p{L}][\p{L}\-]*))?\s+(\d+)"),
            address_context: re(r"(?i)\b(?:wohnhaft|wohnt|wohnen|wohnte|anschrift|adresse|wohnort|meldeadresse|wohnanschrift|zugezogen|umgezogen)\b[^!?\n]{0,40}?\b([\p{L}][\p{L}\-]*\.?)\s*(\d+)"),
            // the rest of a house number: a letter, a range or a sub-number ("2a", "5-7", "9/1")
            house_tail: re(r"^(?:\s?[a-zA-Z]\b)?(?:\s?[-/–]\s?\d{1,3}(?:\s?[a-zA-Z]\b)?)?"),
            postcode_city: re(r"(?i)\b\d{5}\s+[\p{L}][\p{L}]+(?:[\s\-][\p{L}][\p{L}]+)?\b"),
            plate: re(r"\b[A-ZÄÖÜ]{1,3}-[A-Z]{1,2}\s?\d{1,4}[EH]?\b"),
            plate_spaced: re(r"(?i:kennzeichen|kfz|fahrzeug|auto|pkw|wagen|halter)[^.]{0,30}?\b[A-ZÄÖÜ]{1,3}\s[A-Z]{1,2}\s\d{1,4}[EH]?\b"),
            plate_label: re(r"(?i)\bkennzeichen\s*:?\s*([a-zäöü]{1,3})[\s\-]([a-z]{1,2})\s?\d{1,4}[eh]?\b"),
            // a file/customer/case label, optional words and colon, then an identifier with
            // at least one digit ("Az. 31-124/2024", "Aktenzeichen: BA-2024-0815")
            file_label: re(r"(?i)\b(az|gz|akt\.?\s?-?z|aktenzeichen|geschäftszeichen|gesch\.?\s?-?z|(?:unser|ihr)e?\s+zeichen|vorgangs-?nummer|vorgangs-?nr|vorgang\s+nr|kunden-?nummer|kunden-?nr|kd\.?\s?-?nr|kassenzeichen|buchungszeichen|personal-?nummer|personal-?nr|pers\.?\s?-?nr|mitglieds-?nummer|mitglieds-?nr|versicherten-?nummer|vertrags-?nummer|vertrags-?nr|antrags-?nummer|antrags-?nr|bescheid-?nummer|bescheid-?nr|fall-?nummer|akten-?nummer|mandanten-?nummer|zähler-?nummer|rechnungs-?nummer|rechnungs-?nr|tgb\.?\s?-?nr|tagebuch-?nummer|schüler-?nummer|einwohner-?nummer)\b\.?(?:(?:\s+[\p{L}\-]+){1,3}\s*:)?\s*(?:nr\.?|nummer|no\.?)?\s*[:.]?\s*(?:ist|lautet|lautete)?\s*:?\s*((?:(?-i:\p{Lu}{1,6})[\-/.\s]?)?\d[\p{L}\d./\-_]*(?:\s\d[\d./\-]*)?)"),
            // court file numbers: chamber, register letters, number/year ("4 K 1234/23")
            court_file: re(r"\b\d{1,3}\s+(?:[A-Z]{1,3}|[A-Z][a-z]{1,2}[A-Z]?)\s+\d{1,5}/\d{2}(?:\d{2})?\b"),
            // salutations and titles, any case; the name after it is read by title_name()
            title: re(r"(?i)\b(frau|herrn?|hrn?\.|fr\.|dr\.|prof\.|familie|fam\.|eheleute|(?-i:RA|RAin))\s"),
            label_name: re(&format!(r"(?i)\b(?:name|vorname|nachname|familienname|geburtsname|antragsteller(?:in)?|ansprechpartner(?:in)?|sachbearbeiter(?:in)?|mieter(?:in)?|vermieter(?:in)?|patient(?:in)?|kontoinhaber(?:in)?|schuldner(?:in)?|gläubiger(?:in)?|empfänger(?:in)?|absender(?:in)?|kind|vater|mutter|ehemann|ehefrau|bewerber(?:in)?|halter(?:in)?|eigentümer(?:in)?|verstorbene[r]?|betroffene[r]?|anrufer(?:in)?|beschwerdeführer(?:in)?|zeuge|zeugin|kunde|kundin|teilnehmer(?:in)?|schüler(?:in)?|(?:name|vorname|nachname)\s+(?:des|der)\s+\p{{L}}+)\s*:\s*({name})")),
            role_name: re(r"\b(?:Kollege|Kollegin|Nachbar|Nachbarin|Mieter|Mieterin|Vermieter|Vermieterin|Antragsteller|Antragstellerin|Bewerber|Bewerberin|Sachbearbeiter|Sachbearbeiterin|Patient|Patientin|Schülerin|Halterin|Eigentümerin|Beschwerdeführer|Beschwerdeführerin|Anrufer|Anruferin|Zeuge|Zeugin|Schuldner|Schuldnerin|Kontoinhaber|Kontoinhaberin|Ehemann|Ehefrau|Witwe|Witwer|Betreuer|Betreuerin|Mitarbeiterin|Vormund)\s+(\p{Lu}[\p{L}\p{M}'’\-]+)"),
            // "er heißt X", "ich heiße X", "mein Name ist X", "unser Nachname lautet X"
            called: re(&format!(r"(?i)\b(?:(?:er|sie|ich|herr|frau|mann|kind|sohn|tochter|vater|mutter|nachbar|nachbarin|person|kollege|kollegin)\s+hei(?:ß|ss)(?:e|t)|(?:mein|meine|unser|sein|ihr)\s+(?:vor|nach|familien|geburts)?name\s+(?:ist|lautet|war))\s+({name})")),
            maiden: re(r"\bgeb(?:\.|orene)\s+(\p{Lu}[\p{L}\p{M}'’\-]+)"),
            first_last: re(&format!(r"\b(?:{first})(?:-(?:{first}))?\s+(?:\p{{Lu}}\.\s+)?\p{{Lu}}[\p{{L}}\p{{M}}'’]+(?:-\p{{Lu}}[\p{{L}}\p{{M}}'’]+)?")),
            first_last_lower: re(&format!(r"\b(?:{first_lower})\s+(\p{{Ll}}[\p{{L}}\p{{M}}'’\-]+)")),
        }
    })
}

fn iban_valid(s: &str) -> bool {
    let compact: String = s.chars().filter(|c| !c.is_whitespace()).collect::<String>().to_uppercase();
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

fn lower(s: &str) -> String {
    s.to_lowercase()
}

fn starts_upper(s: &str) -> bool {
    s.chars().next().is_some_and(char::is_uppercase)
}

fn has_upper(s: &str) -> bool {
    s.chars().any(char::is_uppercase)
}

/// The char before byte offset `at`.
fn char_before(text: &str, at: usize) -> Option<char> {
    text[..at].chars().next_back()
}

/// The word before byte offset `at` (letters only), lowercased.
fn word_before(text: &str, at: usize) -> String {
    let head = text[..at].trim_end();
    let start = head.rfind(|c: char| !c.is_alphabetic()).map_or(0, |i| i + head[i..].chars().next().map_or(1, char::len_utf8));
    lower(&head[start..])
}

fn is_mark(c: char) -> bool {
    matches!(c, '\u{0300}'..='\u{036F}' | '\u{1AB0}'..='\u{1AFF}' | '\u{1DC0}'..='\u{1DFF}' | '\u{20D0}'..='\u{20FF}')
}

fn is_name_char(c: char) -> bool {
    c.is_alphabetic() || is_mark(c) || matches!(c, '\'' | '’' | '-')
}

/// The next word at or after `pos` (skipping spaces and hyphens): byte range of a run of
/// letters, combining marks, apostrophes and inner hyphens.
fn next_word(text: &str, pos: usize) -> Option<(usize, usize)> {
    let rest = &text[pos..];
    let skip = rest.find(|c: char| !(c.is_whitespace() || c == '-'))?;
    let start = pos + skip;
    let first = text[start..].chars().next()?;
    if !first.is_alphabetic() {
        return None;
    }
    let len = text[start..].find(|c: char| !is_name_char(c)).unwrap_or(text.len() - start);
    let word = text[start..start + len].trim_end_matches(['-', '\'', '’']);
    Some((start, start + word.len()))
}

/// Whether the number at `start..end` after a street name can be a house number: at most
/// 4 digits and not a year (19xx/20xx), not a decimal ("Raum 2.14", "7,50 m") and not
/// followed by a unit or a time ("11 m", "3 %", "10 Uhr").
fn house_number_ok(text: &str, start: usize, end: usize) -> bool {
    let num = &text[start..end];
    if num.len() > 4 || (num.len() == 4 && (num.starts_with("19") || num.starts_with("20"))) {
        return false;
    }
    let rest = &text[end..];
    let mut it = rest.chars();
    if let (Some('.' | ',' | ':'), Some(c)) = (it.next(), it.next())
        && c.is_ascii_digit()
    {
        return false;
    }
    let next = rest.trim_start();
    if next.starts_with(['%', '€', '°', '$']) {
        return false;
    }
    let word: String = next.chars().take_while(|c| c.is_alphanumeric() || matches!(c, '²' | '³')).collect();
    !UNITS.contains(&lower(&word).as_str())
}

/// The end of a house number whose digits end at `end`, with its letter, range or
/// sub-number ("2a", "5-7", "9/1").
fn house_end(text: &str, end: usize) -> usize {
    end + patterns().house_tail.find(&text[end..]).map_or(0, |m| m.end())
}

/// Whether the first word of the text after byte offset `end` is capitalised (a counted
/// noun: "im Sozialamt 412 Anträge").
fn followed_by_noun(text: &str, end: usize) -> bool {
    let rest = text[end..].trim_start_matches([' ', '\t']);
    rest.chars().next().is_some_and(char::is_uppercase)
}

/// Run `re` over `text` and call `f` on each match; when `f` rejects a match, search again
/// from the next character, so a rejected long match does not hide a shorter one inside.
fn each_match<'t>(re: &Regex, text: &'t str, mut f: impl FnMut(&Captures<'t>) -> bool) {
    let mut at = 0;
    while at <= text.len() {
        let Some(c) = re.captures_at(text, at) else { break };
        let m = c.get(0).expect("whole match");
        if f(&c) {
            at = m.end().max(m.start() + 1);
        } else {
            at = m.start() + 1;
        }
        while at < text.len() && !text.is_char_boundary(at) {
            at += 1;
        }
    }
}

/// IBAN at the country code `start`: `cc` and the check digits, then groups of letters and
/// digits separated by single spaces, as long as the country's IBAN (two characters fewer
/// are accepted: a mistyped IBAN is still one). The checksum is not required. Returns the
/// end of the IBAN.
fn iban_at(text: &str, cc: &str, after: usize) -> Option<usize> {
    let want = IBAN_LENGTHS.iter().find(|(c, _)| c.eq_ignore_ascii_case(cc))?.1;
    let bytes = text.as_bytes();
    let mut len = 4;
    let mut pos = after;
    let mut end = after;
    let mut bban_digits = 0;
    loop {
        let mut p = pos;
        if p < bytes.len() && bytes[p] == b' ' {
            p += 1;
        }
        let run = bytes[p..].iter().take_while(|b| b.is_ascii_alphanumeric()).count();
        if run == 0 || len + run > want {
            break;
        }
        bban_digits += bytes[p..p + run].iter().filter(|b| b.is_ascii_digit()).count();
        len += run;
        pos = p + run;
        end = pos;
    }
    // the group must end the token (no letters glued to it)
    let glued = text[end..].chars().next().is_some_and(char::is_alphanumeric);
    (len + 2 >= want && !glued && bban_digits * 2 >= len - 4).then_some(end)
}

/// The name after a salutation or title that ends at `title_end`: returns the end of the
/// name, or None when the salutation is used as a plain noun.
///
/// Rules: further titles ("Dr.", "med.") and initials are skipped, particles ("von", "van
/// der") are taken along; the name word may have any letters (Yılmaz, Nguyễn, O'Connor) and
/// any case. It is no name when it is a function word or frequent verb ("Frau und Mann",
/// "Herr der Lage", "Frau hat") or a listed noun ("Damen", "Jugend"). A lowercase word after a
/// capitalised salutation is a name ("Frau müller") unless the salutation is an
/// abbreviation ("Fr. geschlossen") or follows an article ("eine Frau wartet"); in text
/// typed all in lowercase ("frau müller") it is a name. "Fr." after a weekday ("Mo.–Fr.") is
/// Friday.
fn title_name(text: &str, title_start: usize, title_end: usize) -> Option<usize> {
    let title = &text[title_start..title_end];
    let typed_lower = !starts_upper(title);
    let abbrev = title.ends_with('.');
    let fr = lower(title) == "fr.";
    if fr {
        let from = text[..title_start].char_indices().rev().nth(14).map_or(0, |(i, _)| i);
        let before = lower(&text[from..title_start]);
        let weekday = ["mo", "di", "mi", "do", "sa", "so", "bis"].iter().any(|d| {
            before.split(|c: char| !c.is_alphabetic()).any(|w| w == *d)
        });
        if weekday {
            return None;
        }
    }
    let mut pos = title_end;
    let mut particle = false;
    let (ws, we) = loop {
        let (s, e) = next_word(text, pos)?;
        let w = &text[s..e];
        let lw = lower(w);
        let dot = text[e..].starts_with('.');
        if dot && SECOND_TITLES.contains(&lw.as_str()) {
            pos = e + 1;
            continue;
        }
        if w.chars().count() == 1 && starts_upper(w) && next_word(text, e + usize::from(dot)).is_some() {
            // an initial ("A. Müller") or a one-letter name part ("Ó Briain")
            pos = e + usize::from(dot);
            continue;
        }
        if !particle && PARTICLES.contains(&lw.as_str()) && next_word(text, e).is_some() {
            particle = true;
            pos = e;
            if let Some((s2, e2)) = next_word(text, e)
                && PARTICLES_SECOND.contains(&lower(&text[s2..e2]).as_str())
            {
                pos = e2;
            }
            continue;
        }
        break (s, e);
    };
    let w = &text[ws..we];
    let lw = lower(w);
    if w.chars().count() < 2 || STOP.contains(&lw.as_str()) || NOT_NAMES.contains(&lw.as_str()) {
        return None;
    }
    let determiner = DETERMINERS.contains(&word_before(text, title_start).as_str());
    if !starts_upper(w) && !typed_lower && (abbrev || determiner || particle) {
        return None;
    }
    if particle && determiner {
        return None;
    }
    // take further name parts along ("Frau Olena Kovalenko", "frau nguyen thi lan")
    let mut end = we;
    for _ in 0..2 {
        let gap = &text[end..];
        if !gap.starts_with(' ') {
            break;
        }
        let Some((s, e)) = next_word(text, end) else { break };
        if s != end + 1 {
            break;
        }
        let next = &text[s..e];
        let ln = lower(next);
        let same_case = if typed_lower { !has_upper(next) } else { starts_upper(next) };
        if !same_case || STOP.contains(&ln.as_str()) || NOT_NAMES.contains(&ln.as_str()) {
            break;
        }
        end = e;
    }
    Some(end)
}

/// Find personal data in `text`. Findings are sorted by position and do not overlap (the
/// first, longest finding wins).
pub fn find(text: &str) -> Vec<Finding> {
    let p = patterns();
    let mut out: Vec<Finding> = Vec::new();
    let mut push = |kind: PiiKind, start: usize, end: usize| out.push(Finding { kind, start, end });
    let lowercase_text = !has_upper(text);

    // E-mail addresses, any case.
    for m in p.email.find_iter(text) {
        push(PiiKind::Email, m.start(), m.end());
    }

    // IBANs: a known country code with its length (checksum not required), any case and
    // grouping; any IBAN-shaped string with a valid checksum; anything IBAN-shaped after
    // the word "IBAN".
    for c in p.iban_start.captures_iter(text) {
        let (m, cc) = (c.get(0).expect("match"), &c[1]);
        if let Some(end) = iban_at(text, cc, m.end()) {
            push(PiiKind::Iban, m.start(), end);
        }
    }
    for m in p.iban_loose.find_iter(text) {
        if iban_valid(m.as_str()) {
            push(PiiKind::Iban, m.start(), m.end());
        }
    }
    for m in p.iban_label.find_iter(text) {
        push(PiiKind::Iban, m.start(), m.end());
    }

    // Tax ID (11 digits with a valid check digit), tax number (13/123/45678), or any
    // number of 8 or more digits after a tax label ("Steuer-ID ist ...").
    for m in p.tax_id.find_iter(text) {
        if tax_id_valid(m.as_str()) {
            push(PiiKind::TaxId, m.start(), m.end());
        }
    }
    for m in p.tax_number.find_iter(text) {
        push(PiiKind::TaxId, m.start(), m.end());
    }
    for c in p.tax_label.captures_iter(text) {
        let m = c.get(0).expect("match");
        if digits(&c[1]) >= 8 {
            push(PiiKind::TaxId, m.start(), m.end());
        }
    }

    // Social insurance number: area, birth date, initial, serial, check digit.
    for m in p.social.find_iter(text) {
        push(PiiKind::SocialInsurance, m.start(), m.end());
    }

    // ID card and passport numbers: 9-10 characters of the document alphabet with letters
    // and digits, when an ID word ("Ausweis", "Pass") is in the text.
    if p.id_context.is_match(text) {
        for m in p.id_card.find_iter(text) {
            let d = digits(m.as_str());
            if (1..m.as_str().len()).contains(&d) {
                push(PiiKind::IdCard, m.start(), m.end());
            }
        }
    }

    // Dates of birth: a date after "geboren"/"geb."/"Geburtsdatum"/"*", a date before
    // "geboren", or a year after "geb."/"Jahrgang".
    for re in [&p.birth, &p.birth_after, &p.birth_year] {
        for m in re.find_iter(text) {
            push(PiiKind::DateOfBirth, m.start(), m.end());
        }
    }

    // Phone numbers: international (+43, (+90), 0049) with 7-15 digits or national
    // (leading 0) with 6-15 digits, with spaces, slashes, hyphens, parentheses; or 4+ digits
    // after a phone label. Not: dates and decimals (a dot inside), numbers inside a longer
    // token (preceded by a letter, digit, dot, slash or hyphen), and switchboard numbers
    // ending in "-0" (the town's own general number, no person's).
    for m in p.phone.find_iter(text) {
        let s = m.as_str();
        let n = digits(s);
        let intl = s.starts_with('+') || s.starts_with("(+") || s.starts_with("00");
        let min = if intl { 7 } else { 6 };
        let inside = char_before(text, m.start()).is_some_and(|c| c.is_alphanumeric() || matches!(c, '.' | '/' | '-' | ','));
        let switchboard = s.trim_end().ends_with("-0") || s.trim_end().ends_with("- 0");
        if (min..=15).contains(&n) && !s.contains('.') && !inside && !switchboard {
            push(PiiKind::Phone, m.start(), m.end());
        }
    }
    for c in p.phone_label.captures_iter(text) {
        let (m, num) = (c.get(0).expect("match"), c.get(1).expect("number"));
        let after = text[num.end()..].trim_start().to_lowercase();
        let switchboard = num.as_str().ends_with("-0");
        if digits(num.as_str()) >= 4 && !after.starts_with("uhr") && !switchboard {
            push(PiiKind::Phone, m.start(), num.end());
        }
    }

    // Addresses, any case:
    // (a) one word ending in a street word + house number: "Hauptstr 5", "Kirchweg 17",
    //     "Bahnhofplatz 2a", "Karl-Schurz-Straße 33" (not "Parkplatz 3", "Bundesstraße 10");
    // (b) an adjective or place adjective + a street word + number: "Lange Straße 5",
    //     "Berliner Ring 45", "Alte Steige 12" (for words other than Straße the first word
    //     must end in -e/-er/-en/-es: "Landeswettbewerb Platz 3" is no address);
    // (c) "Am/Im/An der/Zur ..." + a capitalised word, or an adjective and a word, + number:
    //     "Am Markt 3", "An der Kirche 6", "Am Alten Markt 1" (not "im Raum 214", "im
    //     Sozialamt 412 Anträge", "beim Landeswettbewerb Platz 3");
    // (d) a word and a number within 40 characters after "wohnhaft", "wohnt", "Anschrift",
    //     "Adresse": "wohnhaft Sonnenhalde 12".
    // A house number has at most 4 digits, is no year, no decimal and has no unit after it.
    let mut addresses: Vec<(usize, usize)> = Vec::new();
    each_match(&p.street_word, text, |c| {
        let (word, num) = (c.get(1).expect("word"), c.get(2).expect("number"));
        let lw = lower(word.as_str());
        let bare = !STREET_SUFFIX.split('|').any(|s| {
            let s = s.trim_end_matches("\\b").replace("\\.", ".");
            lw.len() > s.len() + 1 && lw.ends_with(&s)
        });
        if bare || NOT_STREETS.contains(&lw.trim_end_matches('.')) || !house_number_ok(text, num.start(), num.end()) {
            return false;
        }
        addresses.push((word.start(), house_end(text, num.end())));
        true
    });
    each_match(&p.street_two, text, |c| {
        let (first, street, num) = (c.get(1).expect("word"), c.get(2).expect("street"), c.get(3).expect("number"));
        let lf = lower(first.as_str());
        let ls = lower(street.as_str());
        let is_strasse = ls.starts_with("str");
        let adjective = ["e", "er", "en", "es"].iter().any(|e| lf.ends_with(e));
        let cased = starts_upper(first.as_str()) || !has_upper(c.get(0).expect("match").as_str());
        let ok = lf.chars().count() >= 3
            && !STOP.contains(&lf.as_str())
            && (is_strasse || adjective)
            && cased
            && house_number_ok(text, num.start(), num.end());
        if ok {
            addresses.push((first.start(), house_end(text, num.end())));
        }
        ok
    });
    each_match(&p.street_prefix, text, |c| {
        let whole = c.get(0).expect("match");
        let num = c.get(4).expect("number");
        let words: Vec<&str> = [c.get(2), c.get(3)].into_iter().flatten().map(|m| m.as_str()).collect();
        let no_place = |w: &str| {
            let lw = lower(w);
            lw.chars().count() < 3
                || STOP.contains(&lw.as_str())
                || NOT_PLACES.contains(&lw.as_str())
                || ["amt", "rat", "ausschuss", "büro", "jahr", "monat", "woche", "quartal"].iter().any(|s| lw.ends_with(s))
        };
        let cased = words.iter().all(|w| starts_upper(w)) || !has_upper(whole.as_str());
        // of two words the first is an adjective ("Am Alten Markt", "Zur Neuen Mühle")
        let adjective = words.len() < 2 || ["e", "en", "er", "es", "em"].iter().any(|e| lower(words[0]).ends_with(e));
        let ok = !words.iter().any(|w| no_place(w))
            && adjective
            && cased
            && house_number_ok(text, num.start(), num.end())
            && !followed_by_noun(text, num.end());
        if ok {
            addresses.push((whole.start(), house_end(text, num.end())));
        }
        ok
    });
    each_match(&p.address_context, text, |c| {
        let whole = c.get(0).expect("match");
        let (word, num) = (c.get(1).expect("word"), c.get(2).expect("number"));
        let lw = lower(word.as_str().trim_end_matches('.'));
        let cased = starts_upper(word.as_str()) || lowercase_text;
        let ok = char_before(text, whole.start()) != Some('-')
            && lw.chars().count() >= 3
            && !STOP.contains(&lw.as_str())
            && !NOT_PLACES.contains(&lw.as_str())
            && cased
            && house_number_ok(text, num.start(), num.end());
        if ok {
            addresses.push((word.start(), house_end(text, num.end())));
        }
        ok
    });
    // A postcode with a town right after an address is part of it; alone it is a place.
    for m in p.postcode_city.find_iter(text) {
        if addresses.iter().any(|&(_, e)| m.start() >= e && m.start() - e <= 5) {
            addresses.push((m.start(), m.end()));
        }
    }
    for &(s, e) in &addresses {
        push(PiiKind::Address, s, e);
    }

    // Licence plates: "GP-AB 123", spaced after a vehicle word ("Pkw S MK 2024"), or any
    // case right after "Kennzeichen" ("kennzeichen es ab 1234").
    for m in p.plate.find_iter(text) {
        push(PiiKind::LicencePlate, m.start(), m.end());
    }
    for m in p.plate_spaced.find_iter(text) {
        push(PiiKind::LicencePlate, m.start(), m.end());
    }
    for c in p.plate_label.captures_iter(text) {
        if !PLATE_STOP.contains(&lower(&c[1]).as_str()) {
            let m = c.get(0).expect("match");
            push(PiiKind::LicencePlate, m.start(), m.end());
        }
    }

    // File numbers: an identifier with at least 3 digits after a file, case, customer,
    // staff or payment label ("Az. 31-124/2024", "Aktenzeichen: BA-2024-0815", "Gz.",
    // "Geschäftszeichen", "Vorgangsnummer", "Kundennummer", "Kassenzeichen",
    // "Personalnummer"), and court file numbers ("4 K 1234/23"). A bare file-plan number
    // after "Az."/"Aktenzeichen" ("Aktenzeichen 022.31": digits and dots only) names a
    // subject group, not a case, and passes.
    for c in p.file_label.captures_iter(text) {
        let (m, id) = (c.get(0).expect("match"), c.get(2).expect("identifier"));
        let label = lower(&c[1]);
        let ident = id.as_str().trim_end_matches(['.', '-', '/']);
        let file_plan = ["az", "gz", "aktenzeichen", "geschäftszeichen"].contains(&label.as_str())
            && ident.split('.').count() > 1
            && ident.split('.').all(|g| (1..=3).contains(&g.len()) && g.chars().all(|ch| ch.is_ascii_digit()));
        if digits(ident) >= 3 && !file_plan {
            push(PiiKind::FileNumber, m.start(), id.start() + ident.len());
        }
    }
    for m in p.court_file.find_iter(text) {
        push(PiiKind::FileNumber, m.start(), m.end());
    }

    // Names: after a salutation or title (see title_name), after a label with a colon
    // ("Name: müller", "Antragstellerin: ayşe kaya"), after a singular role noun
    // ("Kollege Wagner"), after "er/sie heißt", a birth name after "geb.", and a common
    // first name followed by a capitalised word ("Jana Schreiber"), or both in lowercase.
    for m in p.title.captures_iter(text) {
        let t = m.get(1).expect("title");
        if let Some(end) = title_name(text, t.start(), t.end()) {
            push(PiiKind::Name, t.start(), end);
        }
    }
    for re in [&p.label_name, &p.called] {
        for c in re.captures_iter(text) {
            let (m, w) = (c.get(0).expect("match"), c.get(1).expect("name"));
            let lw = lower(w.as_str());
            if w.as_str().chars().count() >= 2 && !STOP.contains(&lw.as_str()) && !NOT_NAMES.contains(&lw.as_str()) {
                push(PiiKind::Name, m.start(), m.end());
            }
        }
    }
    for c in p.role_name.captures_iter(text) {
        let (m, w) = (c.get(0).expect("match"), c.get(1).expect("name"));
        if !NOT_NAMES.contains(&lower(w.as_str()).as_str()) && !NOT_SURNAMES.contains(&w.as_str()) {
            push(PiiKind::Name, m.start(), m.end());
        }
    }
    for c in p.maiden.captures_iter(text) {
        let m = c.get(0).expect("match");
        if !NOT_NAMES.contains(&lower(&c[1]).as_str()) {
            push(PiiKind::Name, m.start(), m.end());
        }
    }
    for m in p.first_last.find_iter(text) {
        let last = m.as_str().split_whitespace().last().unwrap_or("");
        if !NOT_SURNAMES.contains(&last) {
            push(PiiKind::Name, m.start(), m.end());
        }
    }
    for c in p.first_last_lower.captures_iter(text) {
        let (m, w) = (c.get(0).expect("match"), c.get(1).expect("surname"));
        let lw = lower(w.as_str());
        if lw.chars().count() >= 3 && !STOP.contains(&lw.as_str()) && !NOT_NAMES.contains(&lw.as_str()) {
            push(PiiKind::Name, m.start(), m.end());
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

/// `text` with every finding replaced by a German placeholder (`[Name]`, `[Telefon]`,
/// `[IBAN]`, `[E-Mail]`, `[Adresse]`, `[Aktenzeichen]`, ...): what the web team may read of a
/// citizen's question (issue 35). Runs of spaces are kept as they were.
pub fn redact_de(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for f in find(text) {
        if f.start < at {
            continue;
        }
        out.push_str(&text[at..f.start]);
        out.push_str(f.kind.placeholder_de());
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
    fn german_placeholders_replace_name_phone_and_iban() {
        let r = redact_de("Ich bin Frau Petra Hoffmann, Tel. 0171 2345678, IBAN DE89 3704 0044 0532 0130 00. Wann kommt der Sperrmüll?");
        assert!(!r.contains("Hoffmann") && !r.contains("2345678") && !r.contains("3704"), "{r}");
        assert!(r.contains("[Name]") && r.contains("[Telefon]") && r.contains("[IBAN]") && r.contains("Wann kommt der Sperrmüll?"), "{r}");
        assert_eq!(redact_de("Wann ist die Bücherei offen?"), "Wann ist die Bücherei offen?");
        // citizens name themselves in the first person
        for q in [
            "Mein Name ist Hoffmann, wann kommt der Sperrmüll?",
            "Ich heiße Hoffmann und möchte meinen Hund anmelden.",
            "Unser Nachname lautet Hoffmann, wo melden wir das Kind an?",
        ] {
            let r = redact_de(q);
            assert!(!r.contains("Hoffmann") && r.contains("[Name]"), "{q} -> {r}");
        }
        assert_eq!(redact_de("Ich heiße Sie willkommen."), "Ich heiße Sie willkommen.");
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

    #[test]
    fn salutation_words_as_plain_nouns_and_town_numbers_pass() {
        for s in [
            "Frau und Mann sind gleichberechtigt.",
            "Der Einsatzleiter bleibt Herr der Lage.",
            "Eine Frau hat angerufen und nach den Öffnungszeiten gefragt.",
            "Das Amt für Familie, Jugend und Senioren zieht um.",
            "Das Bürgerbüro ist Mo.–Fr. 8–12 Uhr geöffnet, am Fr. und Sa. auch nachmittags.",
            "Die Zentrale erreichen Sie unter 07164 808-0.",
            "Dokumente liegen unter dem Aktenzeichen 022.31.",
            "Die Sitzung ist im Raum 214, die Firsthöhe beträgt 11 m.",
            "Die Straßenreinigung in der Hauptstraße erfolgt nach § 5 Abs. 2 StrReinS.",
            "Der Weihnachtsmarkt 2025 beginnt am 28.11.",
        ] {
            assert!(find(s).is_empty(), "{s}: {:?}", find(s));
        }
    }

    #[test]
    fn hard_forms_are_found_and_redacted() {
        let cases = [
            ("frau müller hat angerufen", "[name] hat angerufen"),
            ("Bitte an Hr. Ó Briain schreiben.", "Bitte an [name] schreiben."),
            ("Rückruf unter (+43) 660 123 45 67.", "Rückruf unter [phone]."),
            ("IBAN ch93 0076 2011 6238 5295 7 bitte", "[iban] bitte"),
            ("Erstattung an DE12 5001 0517 0648 4898 90.", "Erstattung an [iban]."),
            ("Zustellung an Schulstraße 5-7, 73061 Ebersbach", "Zustellung an [address], [address]"),
            ("Sie wohnt Am Markt 3a.", "Sie wohnt [address]."),
            ("Unser Zeichen: 32.1-4711/23", "[file_number]"),
            ("Der Junge ist am 03.05.2012 geboren.", "Der Junge ist [date_of_birth]."),
        ];
        for (text, want) in cases {
            assert_eq!(redact(text), want, "{text}");
        }
    }
}
