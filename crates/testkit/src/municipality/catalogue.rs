//! What the reservations refer to: buildings, their resources (bb_building_resource), the room mailboxes of
//! the mapped resources (bb_resource_outlook_item), organizations and their groups.
//!
//! Deactivation follows the booking system: rows are never deleted, `active = 0` marks a closed building, a
//! retired resource (also hidden and calendar-less, like `bb_sample.sql`'s resource 7) or a dissolved club. Each
//! such row carries the date it went out of use, and the calendar generator gives it nothing after that date, so
//! only the history refers to inactive rows.

use chrono::{Days, NaiveDate};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::Rng;

use super::names::{self, ClubKind, CLUB_KINDS, DOMAIN, MUNICIPALITY, PLACES};
use super::Sizes;

/// What a resource is used for: decides its category, activity, capacity, how many weekly slots it gets and
/// how often it hosts events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Use {
    /// A whole sports hall.
    Hall,
    /// A third of a hall.
    HallPart,
    /// A gym or multi-purpose room.
    Gym,
    /// A meeting room, club room, library.
    Meeting,
    /// A hall with a stage: concerts, theatre, meetings of many.
    Stage,
    /// An outdoor pitch.
    Field,
    /// A swimming pool.
    Pool,
    /// A classroom, rehearsal room, kitchen.
    Classroom,
}

impl Use {
    /// `bb_rescategory.id`.
    pub fn rescategory(self) -> i32 {
        match self {
            Use::Hall | Use::HallPart => 1,
            Use::Gym => 2,
            Use::Meeting | Use::Classroom => 3,
            Use::Stage => 4,
            Use::Field => 5,
            Use::Pool => 6,
        }
    }

    /// `bb_resource.activity_id`.
    pub fn activity(self) -> i32 {
        match self {
            Use::Hall | Use::HallPart => 17,
            Use::Gym => 1,
            Use::Field => 15,
            Use::Pool => 48,
            Use::Meeting => 47,
            Use::Stage | Use::Classroom => 2,
        }
    }

    /// Whether clubs train here (sport) rather than rehearse or meet.
    pub fn sport(self) -> bool {
        matches!(self, Use::Hall | Use::HallPart | Use::Gym | Use::Field | Use::Pool)
    }

    /// Weekly slots relative to [`Sizes::weekly_slots`]: halls are full every evening, meeting rooms are not.
    pub fn slot_factor(self) -> f64 {
        match self {
            Use::Hall => 1.8,
            Use::HallPart => 2.0,
            Use::Gym | Use::Pool => 1.5,
            Use::Field => 1.4,
            Use::Stage | Use::Meeting => 0.45,
            Use::Classroom => 0.35,
        }
    }

    /// Relative share of the events.
    pub fn event_weight(self) -> u32 {
        match self {
            Use::Meeting | Use::Stage => 6,
            Use::Hall => 3,
            Use::Classroom | Use::Gym => 2,
            Use::HallPart | Use::Field | Use::Pool => 1,
        }
    }

    fn capacity(self, rng: &mut StdRng) -> Option<i32> {
        match self {
            Use::Hall => Some(rng.gen_range(3..10) * 100),
            Use::HallPart => Some(100),
            Use::Gym => Some(rng.gen_range(3..8) * 10),
            Use::Meeting => Some(rng.gen_range(6..30)),
            Use::Stage => Some(rng.gen_range(10..40) * 10),
            Use::Classroom => Some(rng.gen_range(15..31)),
            Use::Pool => Some(rng.gen_range(5..12) * 10),
            Use::Field => None,
        }
    }
}

/// The kind of a building: its name, its rooms, its opening hours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// "Nordby idrettshall".
    SportsHall,
    /// "Nordby skole": a gym and rooms let after school hours.
    School,
    /// "Kulturhuset Nordby".
    CultureHouse,
    /// "Nordby kunstgressbane".
    Field,
    /// "Nordby bad".
    Pool,
    /// "Nordby grendehus".
    CommunityHouse,
}

impl Kind {
    /// The mix of a municipality's buildings, repeated: schools are the most common.
    const MIX: [Kind; 12] = [
        Kind::School,
        Kind::SportsHall,
        Kind::School,
        Kind::CommunityHouse,
        Kind::Field,
        Kind::CultureHouse,
        Kind::School,
        Kind::SportsHall,
        Kind::Field,
        Kind::Pool,
        Kind::School,
        Kind::CommunityHouse,
    ];

    fn rooms(self) -> &'static [(&'static str, Use)] {
        match self {
            Kind::SportsHall => &[
                ("Hel hall", Use::Hall),
                ("Hall 1/3 A", Use::HallPart),
                ("Hall 1/3 B", Use::HallPart),
                ("Hall 1/3 C", Use::HallPart),
                ("Styrkerom", Use::Gym),
                ("Møterom", Use::Meeting),
                ("Klubbrom", Use::Meeting),
                ("Flerbruksrom", Use::Gym),
            ],
            Kind::School => &[
                ("Gymsal", Use::Gym),
                ("Aula", Use::Stage),
                ("Musikkrom", Use::Classroom),
                ("Skolekjøkken", Use::Classroom),
                ("Bibliotek", Use::Meeting),
                ("Personalrom", Use::Meeting),
            ],
            Kind::CultureHouse => &[
                ("Storsalen", Use::Stage),
                ("Lillesalen", Use::Stage),
                ("Møterom Fjorden", Use::Meeting),
                ("Møterom Fjellet", Use::Meeting),
                ("Studio", Use::Classroom),
                ("Foajé", Use::Meeting),
                ("Galleri", Use::Meeting),
            ],
            Kind::Field => &[
                ("Kunstgress 11er", Use::Field),
                ("Kunstgress 7er A", Use::Field),
                ("Kunstgress 7er B", Use::Field),
                ("Klubbhus", Use::Meeting),
            ],
            Kind::Pool => &[("Hovedbasseng", Use::Pool), ("Opplæringsbasseng", Use::Pool), ("Møterom", Use::Meeting)],
            Kind::CommunityHouse => &[
                ("Storsal", Use::Stage),
                ("Peisestue", Use::Meeting),
                ("Kjøkken", Use::Classroom),
                ("Møterom", Use::Meeting),
            ],
        }
    }

    /// Name and use of room number `n` past the named ones.
    fn extra_room(self, n: usize) -> (String, Use) {
        match self {
            Kind::School => (format!("Klasserom {}", 101 + n), Use::Classroom),
            Kind::CultureHouse => (format!("Øvingsrom {}", n + 1), Use::Classroom),
            Kind::Field => (format!("Gressbane {}", n + 1), Use::Field),
            Kind::SportsHall | Kind::Pool | Kind::CommunityHouse => (format!("Møterom {}", n + 2), Use::Meeting),
        }
    }

    /// How many resources a building of this kind has, relative to the others.
    fn size_weight(self) -> f64 {
        match self {
            Kind::CultureHouse => 9.0,
            Kind::SportsHall => 8.0,
            Kind::School => 7.0,
            Kind::CommunityHouse => 4.0,
            Kind::Field | Kind::Pool => 3.0,
        }
    }

    fn name(self, rng: &mut StdRng, place: &str) -> String {
        let pattern = match self {
            Kind::SportsHall => names::pick(rng, &["{} idrettshall", "{} flerbrukshall"]),
            Kind::School => names::pick(rng, &["{} skole", "{} ungdomsskole", "{} barneskole"]),
            Kind::CultureHouse => names::pick(rng, &["Kulturhuset {}", "{} kulturhus"]),
            Kind::Field => "{} kunstgressbane",
            Kind::Pool => names::pick(rng, &["{} bad", "{} svømmehall"]),
            Kind::CommunityHouse => names::pick(rng, &["{} grendehus", "{} samfunnshus"]),
        };
        pattern.replace("{}", place)
    }

    /// `bb_building.activity_id`.
    pub fn activity(self) -> i32 {
        match self {
            Kind::CultureHouse | Kind::CommunityHouse => 2,
            Kind::SportsHall | Kind::School | Kind::Field | Kind::Pool => 1,
        }
    }
}

/// A `bb_building` row.
#[derive(Debug, Clone)]
pub struct Building {
    /// `id`.
    pub id: i32,
    /// What it is.
    pub kind: Kind,
    /// `name`.
    pub name: String,
    /// `district`: the place it stands.
    pub place: &'static str,
    /// `street`.
    pub street: String,
    /// `phone`.
    pub phone: String,
    /// Last day in use; `None` while active.
    pub closed: Option<NaiveDate>,
}

/// A `bb_resource` row with its `bb_building_resource` links.
#[derive(Debug, Clone)]
pub struct Resource {
    /// `id`.
    pub id: i32,
    /// Index of its (first) building in [`Catalogue::buildings`].
    pub building: usize,
    /// Further buildings sharing it (a pitch used by a school and a club house): extra links.
    pub shared_with: Vec<usize>,
    /// `name`, unique within the building.
    pub name: String,
    /// What it is used for.
    pub usage: Use,
    /// `sort` within the building.
    pub sort: i32,
    /// `capacity`.
    pub capacity: Option<i32>,
    /// Last day in use; `None` while active.
    pub retired: Option<NaiveDate>,
}

impl Resource {
    /// Whether the resource is in use on `day`.
    pub fn in_use(&self, day: NaiveDate) -> bool {
        self.retired.is_none_or(|last| day <= last)
    }
}

/// A `bb_resource_outlook_item` row.
#[derive(Debug, Clone)]
pub struct Mapping {
    /// `id`.
    pub id: i32,
    /// Index into [`Catalogue::resources`].
    pub resource: usize,
    /// `outlook_item_id`: the room mailbox.
    pub mailbox: String,
    /// `active`.
    pub active: bool,
}

/// A `bb_organization` row.
#[derive(Debug, Clone)]
pub struct Organization {
    /// `id`.
    pub id: i32,
    /// `name`.
    pub name: String,
    /// `shortname`.
    pub shortname: Option<String>,
    /// `organization_number`.
    pub number: String,
    /// `district`.
    pub place: &'static str,
    /// Its kind; `None` for the municipality itself.
    pub club: Option<ClubKind>,
    /// Indexes into [`Catalogue::groups`].
    pub groups: Vec<usize>,
    /// Last day active (dissolved); `None` while active.
    pub dissolved: Option<NaiveDate>,
    /// `show_in_portal`.
    pub portal: bool,
    /// `in_tax_register`.
    pub tax_register: bool,
    /// Whether it has a `homepage`.
    pub homepage: bool,
}

impl Organization {
    /// Whether the organization exists on `day`.
    pub fn active_on(&self, day: NaiveDate) -> bool {
        self.dissolved.is_none_or(|last| day <= last)
    }

    /// Whether its weekly slots are in halls and on fields.
    pub fn sport(&self) -> bool {
        self.club.is_some_and(|c| c.sport)
    }

    /// `email`.
    pub fn email(&self) -> String {
        format!("post@{}.no", names::slug(&self.name, '-'))
    }
}

/// A `bb_group` row.
#[derive(Debug, Clone)]
pub struct Group {
    /// `id`.
    pub id: i32,
    /// Index into [`Catalogue::organizations`].
    pub organization: usize,
    /// `name`.
    pub name: String,
    /// `activity_id`, also the activity of its bookings.
    pub activity: i32,
    /// Last day active; `None` while active.
    pub disbanded: Option<NaiveDate>,
}

/// Everything reservations refer to.
#[derive(Clone)]
pub struct Catalogue {
    /// Buildings, in id order.
    pub buildings: Vec<Building>,
    /// Resources, in id order.
    pub resources: Vec<Resource>,
    /// Room mailboxes, in id order.
    pub mappings: Vec<Mapping>,
    /// Organizations, in id order; the first is the municipality.
    pub organizations: Vec<Organization>,
    /// Groups, in id order.
    pub groups: Vec<Group>,
}

/// A day between `from` and `to` (inclusive).
pub fn day_between(rng: &mut StdRng, from: NaiveDate, to: NaiveDate) -> NaiveDate {
    let span = u64::try_from((to - from).num_days()).unwrap_or(0);
    from + Days::new(rng.gen_range(0..=span))
}

impl std::fmt::Debug for Catalogue {
    /// Counts only, so an [`Activity`](super::Activity) prints in a line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalogue")
            .field("buildings", &self.buildings.len())
            .field("resources", &self.resources.len())
            .field("mappings", &self.mappings.len())
            .field("organizations", &self.organizations.len())
            .field("groups", &self.groups.len())
            .finish()
    }
}

impl Catalogue {
    /// The catalogue of `sizes`, with history from `start` to `today`.
    pub fn generate(rng: &mut StdRng, sizes: &Sizes, start: NaiveDate, today: NaiveDate) -> Catalogue {
        let buildings = buildings(rng, sizes.buildings, start, today);
        let resources = resources(rng, sizes.resources, &buildings, start, today);
        let mappings = mappings(rng, sizes, &buildings, &resources);
        let (organizations, groups) = organizations(rng, sizes, start, today);
        Catalogue { buildings, resources, mappings, organizations, groups }
    }

    /// The building of resource `index`.
    pub fn building_of(&self, resource: usize) -> Option<&Building> {
        self.resources.get(resource).and_then(|r| self.buildings.get(r.building))
    }
}

fn buildings(rng: &mut StdRng, count: usize, start: NaiveDate, today: NaiveDate) -> Vec<Building> {
    let mut kinds: Vec<Kind> = (0..count).map(|i| Kind::MIX[i % Kind::MIX.len()]).collect();
    kinds.shuffle(rng);
    let closed_count = (count as f64 * 0.03).round() as usize;
    let mut taken = std::collections::BTreeSet::new();
    let mut buildings = Vec::with_capacity(count);
    for (i, kind) in kinds.into_iter().enumerate() {
        let mut place = names::pick(rng, PLACES);
        let mut name = kind.name(rng, place);
        for _ in 0..20 {
            if !taken.contains(&name) {
                break;
            }
            place = names::pick(rng, PLACES);
            name = kind.name(rng, place);
        }
        if taken.contains(&name) {
            name = format!("{name} {}", i + 1);
        }
        taken.insert(name.clone());
        // The last few buildings closed some time ago (a half year into the history at the earliest).
        let closed =
            (i >= count - closed_count).then(|| day_between(rng, start + Days::new(180), today - Days::new(180)));
        buildings.push(Building {
            id: i32::try_from(i + 1).unwrap_or(i32::MAX),
            kind,
            name,
            place,
            street: names::street(rng, place),
            phone: names::landline(rng),
            closed,
        });
    }
    buildings
}

fn resources(
    rng: &mut StdRng,
    count: usize,
    buildings: &[Building],
    start: NaiveDate,
    today: NaiveDate,
) -> Vec<Resource> {
    // Resources per building in proportion to its kind's weight (jittered), at least one each, summing to count.
    let weights: Vec<f64> = buildings.iter().map(|b| b.kind.size_weight() * rng.gen_range(0.7..1.3)).collect();
    let total: f64 = weights.iter().sum();
    let spare = count.saturating_sub(buildings.len()) as f64;
    let shares: Vec<f64> = weights.iter().map(|w| w / total * spare).collect();
    let mut per_building: Vec<usize> = shares.iter().map(|s| 1 + s.floor() as usize).collect();
    let mut order: Vec<usize> = (0..buildings.len()).collect();
    order.sort_by(|a, b| (shares[*b] - shares[*b].floor()).total_cmp(&(shares[*a] - shares[*a].floor())));
    let mut missing = count.saturating_sub(per_building.iter().sum());
    for index in order.iter().cycle().take(missing * 2) {
        if missing == 0 {
            break;
        }
        per_building[*index] += 1;
        missing -= 1;
    }

    let mut resources = Vec::with_capacity(count);
    for (b, building) in buildings.iter().enumerate() {
        let rooms = building.kind.rooms();
        for n in 0..per_building[b] {
            let (name, usage) = match rooms.get(n) {
                Some((name, usage)) => ((*name).to_owned(), *usage),
                None => building.kind.extra_room(n - rooms.len()),
            };
            // A few rooms retire (renovated, converted) while their building stays open.
            let retired = building
                .closed
                .or_else(|| rng.gen_bool(0.02).then(|| day_between(rng, start + Days::new(90), today - Days::new(30))));
            resources.push(Resource {
                id: i32::try_from(resources.len() + 1).unwrap_or(i32::MAX),
                building: b,
                shared_with: Vec::new(),
                name,
                usage,
                sort: i32::try_from(n + 1).unwrap_or(0),
                capacity: usage.capacity(rng),
                retired,
            });
        }
    }
    // About one pitch in ten is shared with a school nearby: a second bb_building_resource row.
    let schools: Vec<usize> =
        (0..buildings.len()).filter(|b| buildings[*b].kind == Kind::School && buildings[*b].closed.is_none()).collect();
    for resource in resources.iter_mut().filter(|r| r.usage == Use::Field && r.retired.is_none()) {
        if rng.gen_bool(0.1) {
            if let Some(school) = schools.choose(rng) {
                resource.shared_with.push(*school);
            }
        }
    }
    resources
}

fn mappings(rng: &mut StdRng, sizes: &Sizes, buildings: &[Building], resources: &[Resource]) -> Vec<Mapping> {
    let mut in_use: Vec<usize> = (0..resources.len()).filter(|r| resources[*r].retired.is_none()).collect();
    in_use.shuffle(rng);
    let mut retired: Vec<usize> = (0..resources.len()).filter(|r| resources[*r].retired.is_some()).collect();
    retired.shuffle(rng);
    let active: Vec<usize> = in_use.iter().copied().take(sizes.mapped_resources).collect();
    // Inactive mappings: rooms taken out of the sync, retired rooms first.
    let inactive: Vec<usize> = retired
        .into_iter()
        .chain(in_use.iter().copied().skip(sizes.mapped_resources))
        .take(sizes.inactive_mappings)
        .collect();
    let mut rows: Vec<(usize, bool)> =
        active.into_iter().map(|r| (r, true)).chain(inactive.into_iter().map(|r| (r, false))).collect();
    rows.sort_unstable();
    rows.into_iter()
        .enumerate()
        .map(|(i, (resource, active))| {
            let building = &buildings[resources[resource].building];
            let mailbox = format!(
                "{}.{}@{DOMAIN}",
                names::slug(&building.name, '-'),
                names::slug(&resources[resource].name, '-')
            );
            Mapping { id: i32::try_from(i + 1).unwrap_or(i32::MAX), resource, mailbox, active }
        })
        .collect()
}

fn organizations(
    rng: &mut StdRng,
    sizes: &Sizes,
    start: NaiveDate,
    today: NaiveDate,
) -> (Vec<Organization>, Vec<Group>) {
    let municipality = Organization {
        id: 1,
        name: format!("{MUNICIPALITY} kommune, Kultur og fritid"),
        shortname: Some("KOMMUNE".into()),
        number: names::organization_number(0),
        place: "Sentrum",
        club: None,
        groups: Vec::new(),
        dissolved: None,
        portal: false,
        tax_register: false,
        homepage: true,
    };
    let mut combos: Vec<(&'static str, ClubKind)> =
        PLACES.iter().flat_map(|place| CLUB_KINDS.iter().map(move |kind| (*place, *kind))).collect();
    combos.shuffle(rng);
    let mut organizations = vec![municipality];
    for n in 1..sizes.organizations.max(1) {
        let (place, club) = combos[n % combos.len()];
        let round = n / combos.len();
        let name = if round == 0 {
            format!("{place} {}", club.suffix)
        } else {
            format!("{place} {} avd. {}", club.suffix, round + 1)
        };
        let shortname = rng.gen_bool(0.85).then(|| format!("{}{}", names::initials(place), club.short));
        let dissolved = rng.gen_bool(0.03).then(|| day_between(rng, start + Days::new(60), today - Days::new(30)));
        organizations.push(Organization {
            id: i32::try_from(n + 1).unwrap_or(i32::MAX),
            name,
            shortname: shortname.filter(|s| s.chars().count() <= 11),
            number: names::organization_number(n),
            place,
            club: Some(club),
            groups: Vec::new(),
            dissolved,
            portal: rng.gen_bool(0.7),
            tax_register: rng.gen_bool(0.5),
            homepage: rng.gen_bool(0.3),
        });
    }

    // Every club has at least one group; the rest go mostly to sports clubs (teams per age group).
    let mut owners: Vec<usize> = (1..organizations.len()).collect();
    let weighted: Vec<usize> = (1..organizations.len())
        .flat_map(|o| std::iter::repeat_n(o, if organizations[o].sport() { 3 } else { 1 }))
        .collect();
    while owners.len() < sizes.groups {
        match weighted.choose(rng) {
            Some(o) => owners.push(*o),
            None => break,
        }
    }
    owners.sort_unstable();
    let mut groups = Vec::with_capacity(owners.len());
    for o in owners {
        let organization = &mut organizations[o];
        let Some(club) = organization.club else { continue };
        let n = organization.groups.len();
        let team = club.teams[n % club.teams.len()];
        let name = if n < club.teams.len() { team.to_owned() } else { format!("{team} {}", n / club.teams.len() + 1) };
        let disbanded = organization
            .dissolved
            .or_else(|| rng.gen_bool(0.02).then(|| day_between(rng, start + Days::new(60), today - Days::new(30))));
        organization.groups.push(groups.len());
        groups.push(Group {
            id: i32::try_from(groups.len() + 1).unwrap_or(i32::MAX),
            organization: o,
            name,
            activity: club.activity,
            disbanded,
        });
    }
    (organizations, groups)
}
