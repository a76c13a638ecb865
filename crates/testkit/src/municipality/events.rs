//! One-off reservations (bb_event): meetings, concerts, tournaments, private parties, the municipality's own
//! events and now and then a closure ("STENGT", a multi-day event on several rooms, the only way to close a hall:
//! docs/booking-schema.md §2, Closures).
//!
//! An event never overlaps another event on one of its resources (the booking system's collision test); it may
//! overlap allocations and bookings, which it outranks in the calendar (Event > Booking > Allocation).

use std::collections::BTreeMap;

use chrono::{Datelike, Days, NaiveDate, NaiveDateTime, Weekday};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::Rng;

use super::calendar::clock;
use super::catalogue::{day_between, Catalogue, Use};
use super::names::{self, MUNICIPALITY};
use super::{Sizes, BILLING_LAG_DAYS, FUTURE_DAYS};

/// Share of events cancelled (`active = 0`).
const CANCELLED_EVENTS: f64 = 0.06;
/// Share of events saved again after they were made (edited, cancelled and reactivated): their bb_event_date
/// row was deleted and inserted again then, so it has a later id than the events made after them.
const SAVED_AGAIN: f64 = 0.12;
/// Share of events with a description long enough to be stored out of line (TOAST).
const LONG_DESCRIPTIONS: f64 = 0.02;

/// Who pays for an event.
#[derive(Debug, Clone)]
pub enum Customer {
    /// An organization (index into [`Catalogue::organizations`]); the first is the municipality itself.
    Organization(usize),
    /// A private person, identified by national identity number.
    Private(String),
}

/// A `bb_event` row with its `bb_event_resource` links and its `bb_event_date` row.
#[derive(Debug, Clone)]
pub struct Event {
    /// `id`.
    pub id: i32,
    /// `activity_id`.
    pub activity: i32,
    /// `name`.
    pub name: String,
    /// `organizer`.
    pub organizer: String,
    /// `homepage`.
    pub homepage: Option<String>,
    /// `description`.
    pub description: Option<String>,
    /// `equipment`.
    pub equipment: Option<String>,
    /// `from_`.
    pub from: NaiveDateTime,
    /// `to_`.
    pub to: NaiveDateTime,
    /// `cost`, in øre.
    pub cost: i64,
    /// Indexes into [`Catalogue::resources`]; the first one's building is the event's.
    pub resources: Vec<usize>,
    /// `contact_name`.
    pub contact_name: String,
    /// `contact_email`.
    pub contact_email: String,
    /// `contact_phone`.
    pub contact_phone: String,
    /// The customer fields.
    pub customer: Customer,
    /// `is_public`.
    pub public: bool,
    /// `include_in_list`.
    pub listed: bool,
    /// `participant_limit`.
    pub participant_limit: Option<i32>,
    /// `skip_bas` and `reminder = 0`: the municipality's closures.
    pub closure: bool,
    /// `active`.
    pub active: bool,
    /// `completed`.
    pub completed: bool,
    /// `secret`.
    pub secret: String,
    /// Saved again after later events were made: its bb_event_date id comes after theirs.
    pub saved_again: bool,
}

/// What kind of event it is: decides title, time of day, length and the customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Occasion {
    /// A club's or a person's meeting or course, on a weekday evening.
    Meeting,
    /// A concert or show on a stage, in the evening.
    Concert,
    /// A cup or match day in a hall or on a pitch, at the weekend.
    Tournament,
    /// A private party (`is_public = 0`), at the weekend.
    Party,
    /// The municipality's own: meetings, polling stations, in the day or the evening.
    Municipal,
    /// "STENGT": a closure of several rooms for up to five days.
    Closure,
}

impl Occasion {
    fn for_use(rng: &mut StdRng, usage: Use) -> Occasion {
        if rng.gen_bool(0.006) {
            return Occasion::Closure;
        }
        let roll = rng.gen_range(0..100);
        match usage {
            Use::Meeting | Use::Classroom => match roll {
                0..=64 => Occasion::Meeting,
                65..=79 => Occasion::Party,
                _ => Occasion::Municipal,
            },
            Use::Stage => match roll {
                0..=44 => Occasion::Concert,
                45..=64 => Occasion::Meeting,
                65..=76 => Occasion::Party,
                _ => Occasion::Municipal,
            },
            Use::Hall | Use::HallPart | Use::Gym | Use::Field | Use::Pool => match roll {
                0..=84 => Occasion::Tournament,
                85..=89 => Occasion::Party,
                _ => Occasion::Municipal,
            },
        }
    }

    fn weekend(self) -> bool {
        matches!(self, Occasion::Tournament | Occasion::Party)
    }

    /// Start and end on the event's first day, in minutes after midnight, and how many days it lasts.
    fn times(self, rng: &mut StdRng) -> (u32, u32, u64) {
        match self {
            Occasion::Meeting => {
                let from = rng.gen_range(34..40) * 30;
                (from, from + rng.gen_range(3..7) * 30, 0)
            }
            Occasion::Concert => {
                let from = [18 * 60, 18 * 60 + 30, 19 * 60][rng.gen_range(0..3)];
                (from, from + rng.gen_range(4..7) * 30, 0)
            }
            Occasion::Tournament => {
                let from = rng.gen_range(18..22) * 30;
                (from, from + rng.gen_range(8..17) * 30, 0)
            }
            Occasion::Party => {
                let from = rng.gen_range(24..36) * 30;
                (from, (from + rng.gen_range(8..17) * 30).min(23 * 60), 0)
            }
            Occasion::Municipal => {
                if rng.gen_bool(0.5) {
                    let from = rng.gen_range(16..28) * 30;
                    (from, from + rng.gen_range(2..7) * 30, 0)
                } else {
                    let from = rng.gen_range(35..39) * 30;
                    (from, from + rng.gen_range(3..6) * 30, 0)
                }
            }
            Occasion::Closure => (7 * 60, 23 * 60, rng.gen_range(0..5)),
        }
    }
}

/// Every event from `start` to a little after `today`, in id order (by start time).
pub fn generate(
    rng: &mut StdRng,
    sizes: &Sizes,
    catalogue: &Catalogue,
    start: NaiveDate,
    today: NaiveDate,
) -> Vec<Event> {
    // Resources by how often they host events.
    let weighted: Vec<usize> = catalogue
        .resources
        .iter()
        .enumerate()
        .flat_map(|(i, r)| std::iter::repeat_n(i, r.usage.event_weight() as usize))
        .collect();
    let horizon = today + Days::new(FUTURE_DAYS);
    let days = (horizon - start).num_days().max(1) as f64;
    // As many tries as the years ask for; a future day is kept less often the further ahead it lies (it is
    // only partly booked yet), and a try that finds its rooms taken six times gives up.
    let wanted = (sizes.events_per_year as f64 * days / 365.25) as usize;
    let mut taken: BTreeMap<(usize, NaiveDate), Vec<(NaiveDateTime, NaiveDateTime)>> = BTreeMap::new();
    let mut events = Vec::with_capacity(wanted);
    for _ in 0..wanted {
        for _attempt in 0..6 {
            let Some(&first) = weighted.choose(rng) else { return events };
            let day = day_between(rng, start, horizon);
            if day > today && rng.gen_bool(((day - today).num_days() as f64 / FUTURE_DAYS as f64).min(1.0)) {
                break;
            }
            let event = draft(rng, catalogue, first, day, today);
            let days: Vec<NaiveDate> = event.from.date().iter_days().take_while(|d| *d <= event.to.date()).collect();
            let free = event.resources.iter().all(|r| {
                catalogue.resources[*r].in_use(event.to.date())
                    && days.iter().all(|d| {
                        taken
                            .get(&(*r, *d))
                            .is_none_or(|busy| busy.iter().all(|(f, t)| event.to <= *f || *t <= event.from))
                    })
            });
            if !free {
                continue;
            }
            for r in &event.resources {
                for d in &days {
                    taken.entry((*r, *d)).or_default().push((event.from, event.to));
                }
            }
            events.push(event);
            break;
        }
    }
    events.sort_by_key(|e| (e.from, e.resources.first().copied()));
    for (i, event) in events.iter_mut().enumerate() {
        event.id = i32::try_from(i + 1).unwrap_or(i32::MAX);
    }
    events
}

/// The resources of an event whose first resource is `first`: sometimes more rooms of the same building.
fn rooms(rng: &mut StdRng, catalogue: &Catalogue, first: usize, occasion: Occasion) -> Vec<usize> {
    let building = catalogue.resources[first].building;
    let usage = catalogue.resources[first].usage;
    let mut resources = vec![first];
    let share = match occasion {
        Occasion::Closure => 1.0,
        Occasion::Tournament => 0.3,
        Occasion::Concert | Occasion::Municipal => 0.1,
        Occasion::Meeting | Occasion::Party => 0.04,
    };
    if rng.gen_bool(share) {
        let mut others: Vec<usize> = (0..catalogue.resources.len())
            .filter(|r| {
                *r != first
                    && catalogue.resources[*r].building == building
                    && (occasion == Occasion::Closure || catalogue.resources[*r].usage.sport() == usage.sport())
            })
            .collect();
        others.shuffle(rng);
        resources.extend(others.into_iter().take(rng.gen_range(1..=3)));
    }
    resources
}

/// An event on resource `first` (and sometimes more rooms of its building) on `day` or, for weekend
/// occasions, the weekend after; its id is 0 until it is stored.
pub fn draft(rng: &mut StdRng, catalogue: &Catalogue, first: usize, day: NaiveDate, today: NaiveDate) -> Event {
    let occasion = Occasion::for_use(rng, catalogue.resources[first].usage);
    let weekday = day.weekday().number_from_monday();
    let day = if occasion.weekend() && weekday < 6 {
        day + Days::new(u64::from(6 - weekday) + rng.gen_range(0..2))
    } else if !occasion.weekend() && occasion != Occasion::Closure && day.weekday() == Weekday::Sun {
        day + Days::new(1)
    } else {
        day
    };
    let (from_minutes, to_minutes, extra_days) = occasion.times(rng);
    let from = day.and_time(clock(from_minutes));
    let to = (day + Days::new(extra_days)).and_time(clock(to_minutes));
    let resources = rooms(rng, catalogue, first, occasion);
    let on = day;
    let clubs: Vec<usize> =
        (1..catalogue.organizations.len()).filter(|o| catalogue.organizations[*o].active_on(on)).collect();
    let club = clubs.choose(rng).copied().unwrap_or(0);
    let customer = match occasion {
        Occasion::Party => Customer::Private(names::ssn(rng)),
        Occasion::Municipal | Occasion::Closure => Customer::Organization(0),
        Occasion::Meeting if rng.gen_bool(0.3) => Customer::Private(names::ssn(rng)),
        Occasion::Meeting | Occasion::Concert | Occasion::Tournament => Customer::Organization(club),
    };
    let contact = names::person(rng);
    let (organizer, contact_email, homepage) = match &customer {
        Customer::Organization(o) => {
            let organization = &catalogue.organizations[*o];
            let email = if *o == 0 {
                format!("{}@{}", names::slug(&contact, '.'), names::DOMAIN)
            } else if rng.gen_bool(0.5) {
                organization.email()
            } else {
                names::private_email(rng, &contact)
            };
            let homepage =
                organization.homepage.then(|| format!("https://{}.no", names::slug(&organization.name, '-')));
            let organizer = match occasion {
                Occasion::Closure => format!("{} kommune, Eiendom", MUNICIPALITY),
                _ if *o == 0 => format!("{MUNICIPALITY} kommune"),
                _ => organization.name.clone(),
            };
            (organizer, email, homepage)
        }
        Customer::Private(_) => (contact.clone(), names::private_email(rng, &contact), None),
    };
    let first = &catalogue.resources[resources.first().copied().unwrap_or(0)];
    let place = catalogue.buildings[first.building].place;
    let year = on.year();
    let name = match occasion {
        Occasion::Meeting => match customer {
            Customer::Organization(_) => {
                let what =
                    names::pick(rng, &["Årsmøte", "Styremøte", "Medlemsmøte", "Foreldremøte", "Kurs", "Dugnadsmøte"]);
                format!("{what} {organizer}")
            }
            Customer::Private(_) => {
                names::pick(rng, &["Kurs", "Bokklubb", "Språkkafé", "Foredrag", "Møte i borettslaget"]).to_owned()
            }
        },
        Occasion::Concert => {
            let what = names::pick(rng, &["Konsert", "Vårkonsert", "Julekonsert", "Forestilling", "Revy", "Dansefest"]);
            format!("{what} med {organizer}")
        }
        Occasion::Tournament => {
            let what = names::pick(rng, &["{p}cupen {y}", "Seriekamper", "Stevne", "Treningsleir", "Kretsmesterskap"]);
            what.replace("{p}", place).replace("{y}", &year.to_string())
        }
        Occasion::Party if first.usage.sport() => {
            names::pick(rng, &["Barnebursdag", "Bursdagsfeiring", "Familiedag"]).to_owned()
        }
        Occasion::Party => {
            names::pick(rng, &["Bursdagsfeiring", "Konfirmasjonsfest", "Minnestund", "Familieselskap", "Barnedåp"])
                .to_owned()
        }
        Occasion::Municipal => {
            let what = names::pick(
                rng,
                &["Folkemøte om {p}", "Valglokale", "Kommunestyremøte", "Informasjonsmøte", "Vaksinasjon"],
            );
            what.replace("{p}", place)
        }
        Occasion::Closure => {
            let what = names::pick(rng, &["gulvvedlikehold", "rengjøring", "oppussing", "el-kontroll", "ventilasjon"]);
            format!("STENGT - {what}")
        }
    };
    let public = occasion != Occasion::Party;
    let description = if rng.gen_bool(LONG_DESCRIPTIONS) {
        Some(names::prose(rng, 1600))
    } else if rng.gen_bool(0.6) {
        let words = rng.gen_range(6..30);
        Some(names::prose(rng, words))
    } else {
        None
    };
    let equipment = rng.gen_bool(0.1).then(|| {
        names::pick(rng, &["Projektor og lydanlegg", "40 stoler", "Scene og lys", "Kjøkken", "Flygel"]).to_owned()
    });
    let cost = match occasion {
        Occasion::Party => rng.gen_range(8..26) * 10_000,
        Occasion::Municipal | Occasion::Closure => 0,
        _ if rng.gen_bool(0.6) => 0,
        _ => rng.gen_range(3..15) * 5_000,
    };
    let active = !rng.gen_bool(CANCELLED_EVENTS);
    let capacity = first.capacity;
    Event {
        id: 0,
        activity: match &customer {
            Customer::Organization(o) => catalogue.organizations[*o].club.map_or(2, |c| c.activity),
            Customer::Private(_) => 2,
        },
        name,
        organizer,
        homepage,
        description,
        equipment,
        from,
        to,
        cost,
        resources,
        contact_phone: names::mobile(rng),
        contact_name: contact,
        contact_email,
        customer,
        public,
        listed: public && matches!(occasion, Occasion::Concert | Occasion::Tournament | Occasion::Municipal),
        participant_limit: (occasion == Occasion::Concert).then_some(capacity).flatten(),
        closure: occasion == Occasion::Closure,
        active,
        completed: active && to.date() < today - Days::new(BILLING_LAG_DAYS),
        secret: names::secret(rng),
        saved_again: !active || rng.gen_bool(SAVED_AGAIN),
    }
}
