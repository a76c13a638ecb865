//! The words a Norwegian municipality's booking data is made of: place names, building and room names, club
//! and team names, people, and the identifiers the real system stores (organisation numbers, secrets, e-mail
//! addresses, mailbox names).
//!
//! Everything is made up (as in `bb_sample.sql`'s "Fjordvik kommune"); organisation numbers have a valid
//! MOD11 check digit but are not registered ones.

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::Rng;

/// The municipality: `bb_sample.sql`'s, so the mailboxes share the Graph emulator tenant's domain.
pub const MUNICIPALITY: &str = "Fjordvik";
/// Domain of the municipality's e-mail addresses and room mailboxes.
pub const DOMAIN: &str = "fjordvik.kommune.no";
/// Postal city of every address.
pub const CITY: &str = "Fjordvik";

/// Districts and villages: building locations and the first word of most club names.
pub const PLACES: &[&str] = &[
    "Nordby",
    "Sørvik",
    "Østre Lia",
    "Vestby",
    "Bakkeby",
    "Solberg",
    "Haugland",
    "Lundeby",
    "Fjellstad",
    "Strand",
    "Myra",
    "Bjørkeli",
    "Eikeland",
    "Granly",
    "Furuset",
    "Holmen",
    "Nesset",
    "Tangen",
    "Bråten",
    "Kleiva",
    "Sandvika",
    "Vika",
    "Åsen",
    "Brekke",
    "Dalen",
    "Hagen",
    "Lia",
    "Moen",
    "Berg",
    "Rønningen",
    "Skogen",
    "Voll",
    "Grinde",
    "Hauge",
    "Kvamme",
    "Lerum",
    "Nygård",
    "Osen",
    "Rud",
    "Sletta",
    "Toppen",
    "Utsikten",
    "Vangen",
    "Ødegård",
    "Ålvik",
    "Breivik",
    "Engeland",
    "Flaten",
    "Gjerde",
    "Hovland",
    "Innset",
    "Jordet",
    "Kjos",
    "Langeland",
    "Midtbø",
    "Nedre Haug",
    "Oppsal",
    "Prestegården",
    "Rabben",
    "Stokke",
    "Tjønn",
    "Ulvik",
    "Vassbotn",
    "Øyane",
    "Kirkebyen",
    "Sentrum",
    "Havna",
    "Fjordparken",
    "Sjøsiden",
    "Bjørnstad",
    "Heia",
    "Kollen",
    "Lyngås",
    "Rosseland",
];

/// Street name endings for addresses.
const STREETS: &[&str] = &["veien", "gata", "bakken", "lia", "svingen", "tunet", "stien"];

/// First names of contacts and officers.
pub const FIRST_NAMES: &[&str] = &[
    "Kari",
    "Ole",
    "Ingrid",
    "Lars",
    "Anne",
    "Per",
    "Marit",
    "Jon",
    "Hanne",
    "Erik",
    "Silje",
    "Knut",
    "Nora",
    "Magnus",
    "Ida",
    "Anders",
    "Sofie",
    "Håkon",
    "Emma",
    "Sindre",
    "Lise",
    "Tor",
    "Maja",
    "Espen",
    "Thea",
    "Geir",
    "Ahmed",
    "Fatima",
    "Piotr",
    "Agnieszka",
    "Mona",
    "Bjørn",
    "Astrid",
    "Vegard",
    "Elin",
    "Trond",
    "Sara",
    "Øystein",
];

/// Surnames of contacts and officers.
pub const SURNAMES: &[&str] = &[
    "Nordmann",
    "Hansen",
    "Johansen",
    "Olsen",
    "Larsen",
    "Andersen",
    "Pedersen",
    "Nilsen",
    "Kristiansen",
    "Jensen",
    "Karlsen",
    "Berg",
    "Haugen",
    "Hagen",
    "Eriksen",
    "Dahl",
    "Lie",
    "Moen",
    "Bakken",
    "Solberg",
    "Strand",
    "Lund",
    "Karimi",
    "Nowak",
    "Berntsen",
    "Myhre",
    "Aas",
    "Ødegård",
    "Sæther",
    "Vik",
    "Holm",
    "Rønning",
];

/// A kind of club or association: the name ending, its shortname suffix, its activity and its teams.
#[derive(Debug, Clone, Copy)]
pub struct ClubKind {
    /// Name ending after the place, e.g. "Håndballklubb".
    pub suffix: &'static str,
    /// Shortname ending after the place's initial, e.g. "HK".
    pub short: &'static str,
    /// `bb_activity.id` of the club and its teams.
    pub activity: i32,
    /// Whether its weekly slots are halls and fields (sport) rather than rooms (culture and meetings).
    pub sport: bool,
    /// Team (group) names.
    pub teams: &'static [&'static str],
}

const YOUTH: &[&str] =
    &["G10", "G12", "J12", "G14", "J14", "G16", "J16", "Junior", "Senior herrer", "Damer senior", "Old boys", "Mini"];

/// The clubs and associations of the municipality.
pub const CLUB_KINDS: &[ClubKind] = &[
    ClubKind { suffix: "IL", short: "IL", activity: 1, sport: true, teams: YOUTH },
    ClubKind { suffix: "Fotballklubb", short: "FK", activity: 15, sport: true, teams: YOUTH },
    ClubKind { suffix: "Håndballklubb", short: "HK", activity: 17, sport: true, teams: YOUTH },
    ClubKind { suffix: "Basketballklubb", short: "BBK", activity: 40, sport: true, teams: YOUTH },
    ClubKind { suffix: "Volleyballklubb", short: "VBK", activity: 41, sport: true, teams: YOUTH },
    ClubKind {
        suffix: "Turnforening",
        short: "TF",
        activity: 42,
        sport: true,
        teams: &["Turn 6-8 år", "Turn 9-12 år", "Konkurranseparti", "Voksenturn", "Parkour"],
    },
    ClubKind { suffix: "Innebandyklubb", short: "IBK", activity: 43, sport: true, teams: YOUTH },
    ClubKind {
        suffix: "Svømmeklubb",
        short: "SK",
        activity: 48,
        sport: true,
        teams: &["Svømmeskole", "Rekrutt", "Konkurranse", "Masters"],
    },
    ClubKind {
        suffix: "Skolekorps",
        short: "SKK",
        activity: 34,
        sport: false,
        teams: &["Hovedkorpset", "Aspirantkorpset", "Juniorkorpset", "Drilltroppen"],
    },
    ClubKind {
        suffix: "Musikkorps",
        short: "MK",
        activity: 34,
        sport: false,
        teams: &["Hovedkorpset", "Veteranene", "Messing", "Slagverk"],
    },
    ClubKind {
        suffix: "Kammerkor",
        short: "KK",
        activity: 46,
        sport: false,
        teams: &["Sopran og alt", "Tenor og bass", "Hele koret"],
    },
    ClubKind {
        suffix: "Teaterlag",
        short: "TL",
        activity: 45,
        sport: false,
        teams: &["Barneteater", "Ungdomsteater", "Voksengruppa"],
    },
    ClubKind {
        suffix: "Danseskole",
        short: "DS",
        activity: 44,
        sport: false,
        teams: &["Ballett 6 år", "Hiphop junior", "Jazzdans", "Seniordans"],
    },
    ClubKind {
        suffix: "Pensjonistforening",
        short: "PF",
        activity: 2,
        sport: false,
        teams: &["Medlemsmøter", "Trimgruppa", "Turgruppa"],
    },
    ClubKind {
        suffix: "Sanitetsforening",
        short: "SF",
        activity: 47,
        sport: false,
        teams: &["Styret", "Strikkekafé", "Medlemsmøter"],
    },
    ClubKind { suffix: "Sjakklubb", short: "SJK", activity: 47, sport: false, teams: &["Klubbkveld", "Junior"] },
    ClubKind {
        suffix: "Velforening",
        short: "VF",
        activity: 47,
        sport: false,
        teams: &["Styret", "Dugnadsgruppa", "Årsmøte"],
    },
    ClubKind {
        suffix: "Ungdomsklubb",
        short: "UK",
        activity: 2,
        sport: false,
        teams: &["Åpen kveld", "Band", "E-sport", "Styret"],
    },
];

/// The `bb_activity` tree: `(id, parent, name)`. Ids 1, 2, 15, 17 and 34 are the ones `bb_sample.sql` uses
/// (upstream's default records), so tests written against the sample keep working.
pub const ACTIVITIES: &[(i32, Option<i32>, &str)] = &[
    (1, None, "Idrett"),
    (2, None, "Kultur"),
    (15, Some(1), "Fotball"),
    (17, Some(1), "Håndball"),
    (34, Some(2), "Musikk / Korps"),
    (40, Some(1), "Basketball"),
    (41, Some(1), "Volleyball"),
    (42, Some(1), "Turn"),
    (43, Some(1), "Innebandy"),
    (44, Some(2), "Dans"),
    (45, Some(2), "Teater"),
    (46, Some(2), "Kor"),
    (47, Some(2), "Foreninger og møter"),
    (48, Some(1), "Svømming"),
];

/// `(account_id, login, first name, last name)` of the case officers owning the seasons; 1001-1003 as in
/// `bb_sample.sql`.
pub const OFFICERS: &[(i32, &str, &str, &str)] = &[
    (1001, "kari.nordmann", "Kari", "Nordmann"),
    (1002, "ole.hansen", "Ole", "Hansen"),
    (1003, "fritid.admin", "Fritid", "Admin"),
    (1004, "ingrid.berg", "Ingrid", "Berg"),
    (1005, "lars.haugen", "Lars", "Haugen"),
    (1006, "silje.dahl", "Silje", "Dahl"),
];

/// Words of event descriptions; large descriptions are drawn from these so they compress poorly enough to be
/// stored out of line (TOAST, docs/booking-schema.md §5).
const WORDS: &[&str] = &[
    "velkommen",
    "til",
    "arrangement",
    "i",
    "salen",
    "med",
    "kaffe",
    "og",
    "kaker",
    "program",
    "musikk",
    "barn",
    "voksne",
    "gratis",
    "inngang",
    "billetter",
    "dørene",
    "åpner",
    "loddsalg",
    "servering",
    "pause",
    "foredrag",
    "informasjon",
    "påmelding",
    "frist",
    "kommune",
    "lag",
    "forening",
    "kamp",
    "turnering",
    "konsert",
    "utstilling",
    "garderober",
    "parkering",
    "rullestol",
    "tilgjengelig",
    "heis",
    "scene",
    "lyd",
    "lys",
    "rigging",
    "rydding",
];

/// A name picked from `list`.
pub fn pick<'a>(rng: &mut StdRng, list: &[&'a str]) -> &'a str {
    list.choose(rng).copied().unwrap_or_default()
}

/// A person's full name.
pub fn person(rng: &mut StdRng) -> String {
    format!("{} {}", pick(rng, FIRST_NAMES), pick(rng, SURNAMES))
}

/// A private e-mail address for `name`.
pub fn private_email(rng: &mut StdRng, name: &str) -> String {
    let host = pick(rng, &["epost.no", "online.no", "gmail.com", "hotmail.com"]);
    format!("{}{}@{host}", slug(name, '.'), rng.gen_range(1..100))
}

/// A Norwegian mobile number as people type it: "9xx xx xxx" or "4xx xx xxx".
pub fn mobile(rng: &mut StdRng) -> String {
    let first = if rng.gen_bool(0.6) { 9 } else { 4 };
    format!("{first}{:02} {:02} {:03}", rng.gen_range(0..100), rng.gen_range(0..100), rng.gen_range(0..1000))
}

/// A landline of the municipality's switchboard range.
pub fn landline(rng: &mut StdRng) -> String {
    format!("51 23 {:02} {:02}", rng.gen_range(40..80), rng.gen_range(0..100))
}

/// A street address in `place`.
pub fn street(rng: &mut StdRng, place: &str) -> String {
    let stem = place.split_whitespace().last().unwrap_or(place);
    format!("{stem}{} {}", pick(rng, STREETS), rng.gen_range(1..80))
}

/// The postcode of `place` (every place its own, 4370-4449).
pub fn zip_code(place: &str) -> String {
    let index = PLACES.iter().position(|p| *p == place).unwrap_or(0);
    format!("{}", 4370 + index)
}

/// A 9-digit organisation number with a valid MOD11 check digit, different for every `n`.
pub fn organization_number(n: usize) -> String {
    const WEIGHTS: [u32; 8] = [3, 2, 7, 6, 5, 4, 3, 2];
    // Sixteen candidates per n: about one in eleven bases has no valid check digit (remainder 1).
    for k in 0..16 {
        let base = 81_000_000 + (n as u64 % 1_000_000) * 16 + k;
        let digits: Vec<u32> = base.to_string().chars().filter_map(|c| c.to_digit(10)).collect();
        let sum: u32 = digits.iter().zip(WEIGHTS).map(|(d, w)| d * w).sum();
        let check = match 11 - sum % 11 {
            11 => 0,
            10 => continue,
            c => c,
        };
        return format!("{base}{check}");
    }
    format!("{}", 810_000_000 + n)
}

/// A made-up national identity number (11 digits, birth date first) for private customers.
pub fn ssn(rng: &mut StdRng) -> String {
    format!(
        "{:02}{:02}{:02}{:05}",
        rng.gen_range(1..29),
        rng.gen_range(1..13),
        rng.gen_range(40..100),
        rng.gen_range(10000..100000)
    )
}

/// The 32 hex digits upstream's `bin2hex(random_bytes(16))` gives `secret`.
pub fn secret(rng: &mut StdRng) -> String {
    format!("{:032x}", rng.gen::<u128>())
}

/// A description of about `words` words.
pub fn prose(rng: &mut StdRng, words: usize) -> String {
    let mut text = String::with_capacity(words * 8);
    for i in 0..words {
        if i > 0 {
            text.push(if i % 12 == 0 { '\n' } else { ' ' });
        }
        text.push_str(pick(rng, WORDS));
    }
    text.push('.');
    text
}

/// Lowercase ASCII of `text` with `separator` between words: "Møterom Fjorden" -> "moterom-fjorden".
pub fn slug(text: &str, separator: char) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars().flat_map(char::to_lowercase) {
        match c {
            'æ' => out.push_str("ae"),
            'ø' => out.push('o'),
            'å' | 'á' | 'à' => out.push('a'),
            'é' | 'è' => out.push('e'),
            c if c.is_ascii_alphanumeric() => out.push(c),
            _ => {
                if !out.is_empty() && !out.ends_with(separator) {
                    out.push(separator);
                }
            }
        }
    }
    while out.ends_with(separator) {
        out.pop();
    }
    out
}

/// The initials of a place: "Østre Lia" -> "ØL", "Nordby" -> "N".
pub fn initials(place: &str) -> String {
    place.split_whitespace().filter_map(|word| word.chars().next()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn organization_numbers_have_a_valid_check_digit_and_differ() {
        let numbers: Vec<String> = (0..2000).map(organization_number).collect();
        let mut unique = numbers.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), numbers.len());
        for number in &numbers {
            assert_eq!(number.len(), 9);
            let digits: Vec<u32> = number.chars().filter_map(|c| c.to_digit(10)).collect();
            let sum: u32 = digits.iter().zip([3, 2, 7, 6, 5, 4, 3, 2, 1]).map(|(d, w)| d * w).sum();
            assert_eq!(sum % 11, 0, "{number}");
        }
    }

    #[test]
    fn slugs_are_lowercase_ascii() {
        assert_eq!(slug("Møterom Fjorden (2. etg)", '-'), "moterom-fjorden-2-etg");
        assert_eq!(slug("Hall 1/3 A", '-'), "hall-1-3-a");
        assert_eq!(slug("Åsen skole", '.'), "asen.skole");
    }
}
