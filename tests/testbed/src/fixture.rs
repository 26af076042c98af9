//! One logical directory, the same for every server: organizational units, users and groups with the
//! awkward cases a real directory has. Deterministic: the same spec always gives the same fixture.

/// How big a fixture to make.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FixtureSpec {
    pub users: usize,
    /// Generic "Team NNNN" groups in addition to the fixed special groups.
    pub teams: usize,
    /// Members of the "All Staff" group: the first this-many users.
    pub big_group_members: usize,
}

impl FixtureSpec {
    /// The fixture the integration tests use: a 3000+ member group and every special case.
    pub const STANDARD: FixtureSpec = FixtureSpec {
        users: 3200,
        teams: 20,
        big_group_members: 3100,
    };
    /// A small fixture for quick checks; the big group is as large as the user count.
    pub const SMALL: FixtureSpec = FixtureSpec {
        users: 60,
        teams: 4,
        big_group_members: 60,
    };

    /// A fixture of `users` users with one group per 20 users and a big group of half of them.
    pub fn scaled(users: usize) -> FixtureSpec {
        FixtureSpec {
            users,
            teams: (users / 20).max(1),
            big_group_members: users / 2,
        }
    }
}

/// An organizational unit, as its path of names from the base DN down.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ou {
    pub path: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    /// sAMAccountName on AD, uid on LDAP.
    pub login: String,
    pub given_name: String,
    pub surname: String,
    pub display_name: String,
    pub email: String,
    pub phone: String,
    pub description: String,
    /// Index into `Fixture::ous`.
    pub ou: usize,
    pub disabled: bool,
    pub uid_number: u32,
}

impl User {
    /// The common name: unique within its OU because it carries the login.
    pub fn common_name(&self) -> String {
        format!("{} ({})", self.display_name, self.login)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Member {
    User(usize),
    Group(usize),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group {
    pub name: String,
    pub description: String,
    pub ou: usize,
    /// Direct members, sorted, without duplicates.
    pub members: Vec<Member>,
    pub gid_number: u32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fixture {
    pub ous: Vec<Ou>,
    pub users: Vec<User>,
    pub groups: Vec<Group>,
}

// Indices into OUS.
const STAFF_OUS: [usize; 4] = [1, 2, 3, 4];
const GROUPS_OU: usize = 5;
const TEAMS_OU: usize = 6;
const NESTED_OU: usize = 7;
const OUS: [&[&str]; 8] = [
    &["Corp"],
    &["Corp", "Staff"],
    &["Corp", "Staff", "Engineering"],
    &["Corp", "Staff", "Engineering", "Platform"],
    &["Corp", "Staff", "Sales"],
    &["Corp", "Groups"],
    &["Corp", "Groups", "Teams"],
    &["Corp", "Groups", "Nested"],
];

const GIVEN_NAMES: [&str; 12] = [
    "John",
    "Žofia",
    "Ľubomír",
    "Jürgen",
    "Renée",
    "Łukasz",
    "Søren",
    "Mária",
    "Ólafur",
    "Αλέξανδρος",
    "雷",
    "Ana",
];
const SURNAMES: [&str; 11] = [
    "Doe",
    "Kováčová",
    "Šťastný",
    "Müller",
    "Dupré",
    "Wiśniewski",
    "Ørsted",
    "Nagy",
    "Þórsson",
    "Παπαδόπουλος",
    "李",
];

/// Special groups, by name, so tests can find them.
pub mod names {
    pub const ALL_STAFF: &str = "All Staff";
    pub const ENGINEERING: &str = "Engineering";
    pub const PLATFORM: &str = "Platform";
    pub const SRE: &str = "SRE";
    pub const ON_CALL: &str = "On-Call";
    pub const CYCLE_A: &str = "Cycle A";
    pub const CYCLE_B: &str = "Cycle B";
    pub const EMPTY: &str = "Empty Group";
    /// Three names that become the same DNS-1123 label once sanitised.
    pub const COLLIDING: [&str; 3] = ["Dev Ops", "dev-ops", "DEV_OPS"];
    pub const UNICODE: [&str; 2] = ["Účtovníctvo", "Ventes Été"];
    /// A name that is an LDAP filter injection if a filter is built from it without escaping.
    pub const FILTER_INJECTION: &str = "Tricky *)(uid=*";
    /// A name with characters that must be escaped in a DN.
    pub const DN_SPECIALS: &str = "Research, Development + Test";
}

/// Whether user `i` is disabled: a fixed, sparse pattern.
pub fn is_disabled(i: usize) -> bool {
    i % 25 == 7
}

pub fn generate(spec: FixtureSpec) -> Fixture {
    let ous = OUS
        .iter()
        .map(|p| Ou {
            path: p.iter().map(|s| s.to_string()).collect(),
        })
        .collect();
    let users = (0..spec.users).map(make_user).collect();
    let groups = make_groups(spec);
    Fixture { ous, users, groups }
}

fn make_user(i: usize) -> User {
    let given = GIVEN_NAMES[i % GIVEN_NAMES.len()];
    let surname = SURNAMES[(i / GIVEN_NAMES.len()) % SURNAMES.len()];
    let login = format!("user{:05}", i + 1);
    User {
        email: format!("{login}@example.com"),
        phone: format!("+421 2 5550 {:04}", i % 10_000),
        description: format!("Fixture user {}", i + 1),
        display_name: format!("{given} {surname}"),
        given_name: given.to_owned(),
        surname: surname.to_owned(),
        ou: STAFF_OUS[i % STAFF_OUS.len()],
        disabled: is_disabled(i),
        uid_number: 10_000 + i as u32,
        login,
    }
}

fn make_groups(spec: FixtureSpec) -> Vec<Group> {
    let n = spec.users;
    let mut groups: Vec<Group> = Vec::new();
    let mut add = |name: &str, ou: usize, members: Vec<Member>| -> usize {
        let gid_number = 20_000 + groups.len() as u32;
        groups.push(Group {
            name: name.to_owned(),
            description: format!("Fixture group {name}"),
            ou,
            members,
            gid_number,
        });
        groups.len() - 1
    };
    let users = |range: std::ops::Range<usize>| -> Vec<Member> {
        range.filter(|&i| i < n).map(Member::User).collect()
    };

    add(
        names::ALL_STAFF,
        GROUPS_OU,
        users(0..spec.big_group_members.min(n)),
    );
    // Engineering > Platform > SRE > On-Call: three levels of nesting below the top group.
    let on_call = add(names::ON_CALL, NESTED_OU, users(0..3));
    let sre = add(
        names::SRE,
        NESTED_OU,
        [users(3..6), vec![Member::Group(on_call)]].concat(),
    );
    let platform = add(
        names::PLATFORM,
        NESTED_OU,
        [users(6..10), vec![Member::Group(sre)]].concat(),
    );
    let engineering = add(
        names::ENGINEERING,
        GROUPS_OU,
        [users(10..15), vec![Member::Group(platform)]].concat(),
    );
    // A membership cycle: A contains B and B contains A.
    let cycle_a = add(names::CYCLE_A, NESTED_OU, users(15..18));
    let cycle_b = add(
        names::CYCLE_B,
        NESTED_OU,
        [users(18..21), vec![Member::Group(cycle_a)]].concat(),
    );
    add(names::EMPTY, GROUPS_OU, Vec::new());
    for (k, name) in names::COLLIDING.iter().enumerate() {
        add(name, GROUPS_OU, users(21 + k..22 + k));
    }
    for (k, name) in names::UNICODE.iter().enumerate() {
        add(name, GROUPS_OU, users(24 + 2 * k..26 + 2 * k));
    }
    add(names::FILTER_INJECTION, GROUPS_OU, users(28..29));
    add(names::DN_SPECIALS, GROUPS_OU, users(29..31));
    // Teams: every user is in two teams (one when both picks agree); Engineering also holds team 1.
    let teams = spec.teams.max(1);
    let mut team_members: Vec<Vec<Member>> = vec![Vec::new(); teams];
    for i in 0..n {
        team_members[i % teams].push(Member::User(i));
        team_members[(i * 31 + 7) % teams].push(Member::User(i));
    }
    let team_ids: Vec<usize> = team_members
        .into_iter()
        .enumerate()
        .map(|(t, members)| add(&format!("Team {:04}", t + 1), TEAMS_OU, members))
        .collect();
    groups[cycle_a].members.push(Member::Group(cycle_b));
    if let Some(&team) = team_ids.get(1) {
        groups[engineering].members.push(Member::Group(team));
    }
    for g in &mut groups {
        g.members.sort();
        g.members.dedup();
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_spec_same_fixture() {
        assert_eq!(generate(FixtureSpec::SMALL), generate(FixtureSpec::SMALL));
    }

    #[test]
    fn standard_fixture_has_every_special_case() {
        let f = generate(FixtureSpec::STANDARD);
        let group = |name: &str| f.groups.iter().position(|g| g.name == name).expect(name);
        assert!(f.groups[group(names::ALL_STAFF)].members.len() > 3000);
        assert!(f.groups[group(names::EMPTY)].members.is_empty());
        assert!(
            f.groups[group(names::CYCLE_A)]
                .members
                .contains(&Member::Group(group(names::CYCLE_B)))
        );
        assert!(
            f.groups[group(names::CYCLE_B)]
                .members
                .contains(&Member::Group(group(names::CYCLE_A)))
        );
        assert!(
            f.groups[group(names::SRE)]
                .members
                .contains(&Member::Group(group(names::ON_CALL)))
        );
        assert!(f.users.iter().any(|u| u.disabled));
        assert!(f.users.iter().any(|u| !u.display_name.is_ascii()));
        assert!(f.ous.iter().any(|o| o.path.len() >= 4));
        let memberships = |i: usize| {
            f.groups
                .iter()
                .filter(|g| g.members.contains(&Member::User(i)))
                .count()
        };
        assert!(memberships(100) >= 3, "users belong to several groups");
    }

    #[test]
    fn logins_and_common_names_are_unique() {
        let f = generate(FixtureSpec::STANDARD);
        let mut logins: Vec<_> = f.users.iter().map(|u| &u.login).collect();
        logins.sort();
        logins.dedup();
        assert_eq!(logins.len(), f.users.len());
        let mut names: Vec<_> = f.groups.iter().map(|g| g.name.to_lowercase()).collect();
        names.sort();
        names.dedup();
        assert_eq!(
            names.len(),
            f.groups.len(),
            "group names are unique case-insensitively, as AD needs"
        );
    }
}
