//! Deterministic site generator: the built-in demo site (`scale = 0`) and realistic sites of
//! any size (`scale = N` workbooks). Same options, same bytes: a private PRNG, no clock, no
//! hash-map iteration order. `now` is the constant [`DEMO_NOW`]; loading a site shifts it.
//!
//! The demo site tells the stories of the product specification: a Finance project (with
//! nested sub-projects) where about two dozen workbooks have not been viewed in 90+ days,
//! duplicate and deprecated published datasources with dependent workbooks, John Smith of
//! the Marketing team who owns ~20 workbooks, sensitive content with overly broad
//! permissions, and subscriptions on all of it.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, Utc};

use crate::model::*;

/// The fixed `now` of generated sites.
pub const DEMO_NOW: &str = "2026-01-15T12:00:00Z";

/// Generator options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Number of workbooks; 0 = the demo site (847 workbooks).
    pub scale: usize,
    pub seed: u64,
}

/// The built-in demo site.
pub fn demo() -> Site {
    generate(&Options { scale: 0, seed: 1 })
}

/// splitmix64: small, fast, and the same everywhere.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 { 0 } else { (self.next() % n as u64) as usize }
    }
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next() % ((hi - lo).max(1) as u64)) as i64
    }
    fn chance(&mut self, p: f64) -> bool {
        ((self.next() >> 11) as f64 / (1u64 << 53) as f64) < p
    }
    fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[self.below(v.len())]
    }
    fn luid(&mut self) -> String {
        let a = self.next();
        let b = self.next();
        format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0x0fff,
            0x8000 | (b >> 48) & 0x3fff,
            b & 0xffff_ffff_ffff
        )
    }
}

const FIRST: &[&str] = &[
    "James",
    "Mary",
    "Robert",
    "Patricia",
    "Michael",
    "Jennifer",
    "William",
    "Linda",
    "Richard",
    "Elizabeth",
    "Joseph",
    "Barbara",
    "Thomas",
    "Susan",
    "Charles",
    "Jessica",
    "Daniel",
    "Karen",
    "Matthew",
    "Nancy",
    "Anthony",
    "Betty",
    "Mark",
    "Sandra",
    "Steven",
    "Ashley",
    "Paul",
    "Kimberly",
    "Andrew",
    "Donna",
    "Joshua",
    "Michelle",
    "Kenneth",
    "Carol",
    "Kevin",
    "Amanda",
    "Brian",
    "Melissa",
    "Priya",
    "Wei",
    "Aisha",
    "Carlos",
    "Fatima",
    "Hiroshi",
    "Ingrid",
    "Mateo",
    "Noor",
    "Olga",
    "Rahul",
    "Sofia",
    "Tariq",
    "Yuki",
    "Zara",
    "Lucas",
    "Chloe",
    "Ethan",
    "Grace",
    "Omar",
];
const LAST: &[&str] = &[
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Hernandez",
    "Lopez",
    "Gonzalez",
    "Wilson",
    "Anderson",
    "Thomas",
    "Taylor",
    "Moore",
    "Jackson",
    "Martin",
    "Thompson",
    "White",
    "Harris",
    "Sanchez",
    "Clark",
    "Ramirez",
    "Lewis",
    "Robinson",
    "Walker",
    "Young",
    "Allen",
    "King",
    "Wright",
    "Scott",
    "Torres",
    "Nguyen",
    "Hill",
    "Flores",
    "Green",
    "Adams",
    "Nelson",
    "Baker",
    "Hall",
    "Rivera",
    "Campbell",
    "Mitchell",
    "Patel",
    "Singh",
    "Tanaka",
    "Kowalski",
    "Novak",
    "Larsen",
    "Okafor",
    "Haddad",
    "Costa",
    "Fischer",
    "Rossi",
    "Dubois",
];
const SHEETS: &[&str] = &[
    "Overview",
    "Summary",
    "Detail",
    "By Region",
    "Trend",
    "KPIs",
    "Map",
    "Top 10",
    "Year over Year",
    "Breakdown",
    "By Product",
    "By Month",
    "Drilldown",
    "Scorecard",
    "Exceptions",
];
const KINDS: &[&str] = &["Dashboard", "Report", "Analysis", "Summary", "Tracker", "Overview", "Scorecard", "Explorer"];
const PERIODS: &[&str] = &["", "", "", "Q1 ", "Q2 ", "Q3 ", "Q4 ", "FY25 ", "FY26 ", "Monthly ", "Weekly ", "Daily "];
const SCHEDULES: &[&str] = &["Weekly (Monday 8am)", "Daily (7am)", "Monthly (1st, 9am)", "Weekdays (6am)"];

/// A team: its group, its top-level project, what its workbooks are about.
struct Team {
    name: &'static str,
    topics: &'static [&'static str],
    children: &'static [&'static str],
    /// Share of the workbooks of a scaled site.
    weight: usize,
}

const TEAMS: &[Team] = &[
    Team {
        name: "Finance",
        topics: &[
            "Revenue",
            "Expense",
            "Budget",
            "Forecast",
            "Cash Flow",
            "P&L",
            "Balance Sheet",
            "Accounts Payable",
            "Accounts Receivable",
            "Capex",
            "Opex",
            "Margin",
            "Audit",
            "Tax",
            "Treasury",
            "Variance",
            "GL Reconciliation",
        ],
        children: &["Quarterly Reporting", "Budgeting"],
        weight: 14,
    },
    Team {
        name: "Marketing",
        topics: &[
            "Campaign ROI",
            "Lead Funnel",
            "Web Traffic",
            "SEO",
            "Email Engagement",
            "Social Reach",
            "Brand Health",
            "Attribution",
            "Event Leads",
            "Paid Media",
            "Content Performance",
        ],
        children: &["Campaigns", "Web Analytics"],
        weight: 18,
    },
    Team {
        name: "Sales",
        topics: &[
            "Pipeline",
            "Bookings",
            "Quota Attainment",
            "Win Rate",
            "Territory",
            "Account Health",
            "Renewals",
            "Deal Velocity",
            "Partner Sales",
            "Discounting",
            "Sales Orders",
        ],
        children: &["Regional", "Pipeline Reviews"],
        weight: 24,
    },
    Team {
        name: "HR",
        topics: &[
            "Headcount",
            "Attrition",
            "Hiring Funnel",
            "Compensation",
            "Diversity",
            "Engagement Survey",
            "Time Off",
            "Training",
        ],
        children: &["Confidential"],
        weight: 7,
    },
    Team {
        name: "Operations",
        topics: &[
            "Inventory",
            "Shipments",
            "On-Time Delivery",
            "Warehouse Capacity",
            "Supplier Scorecard",
            "Returns",
            "Fleet Utilization",
            "Order Backlog",
            "Quality Defects",
        ],
        children: &["Supply Chain"],
        weight: 18,
    },
    Team {
        name: "Executive",
        topics: &["Company KPIs", "Board Metrics", "Strategic Initiatives", "Investor Update", "OKR"],
        children: &["Board Reports"],
        weight: 6,
    },
];

/// One of the demo's named people.
struct Person {
    user: &'static str,
    full: &'static str,
    role: &'static str,
    teams: &'static [&'static str],
}

const PEOPLE: &[Person] = &[
    Person { user: "admin", full: "Site Admin", role: "SiteAdministratorCreator", teams: &[] },
    Person { user: "jsmith", full: "John Smith", role: "Creator", teams: &["Marketing"] },
    Person { user: "slee", full: "Sarah Lee", role: "Creator", teams: &["Marketing"] },
    Person { user: "tbaker", full: "Tom Baker", role: "Creator", teams: &["Finance"] },
    Person { user: "mgarcia", full: "Maria Garcia", role: "Creator", teams: &["Sales"] },
    Person { user: "echen", full: "Emily Chen", role: "Creator", teams: &["HR"] },
    Person { user: "dkim", full: "David Kim", role: "Creator", teams: &["Operations"] },
    Person { user: "lwong", full: "Lisa Wong", role: "ExplorerCanPublish", teams: &["Executive", "Finance"] },
    Person { user: "jdoe", full: "John Doe", role: "Explorer", teams: &["Sales"] },
];

/// Team lead (project owner) per team.
fn lead_of(team: &str) -> &'static str {
    match team {
        "Finance" => "tbaker",
        "Marketing" => "slee",
        "Sales" => "mgarcia",
        "HR" => "echen",
        "Operations" => "dkim",
        "Executive" => "lwong",
        _ => "admin",
    }
}

/// A published datasource of the story: name, team, connection, fields, flags.
struct DsSpec {
    name: &'static str,
    team: &'static str,
    kind: &'static str,
    server: &'static str,
    database: &'static str,
    table: &'static str,
    fields: &'static [&'static str],
    certified: bool,
    note: Option<&'static str>,
    tags: &'static [&'static str],
    owner: Option<&'static str>,
    /// Fields of `fields` this copy lacks (duplicates drift apart a little).
    drop: usize,
}

const GL_FIELDS: &[&str] = &[
    "Entry ID",
    "Posting Date",
    "Account",
    "Account Name",
    "Cost Center",
    "Department",
    "Amount",
    "Currency",
    "Fiscal Period",
    "Fiscal Year",
    "Entity",
    "Journal Type",
    "Description",
    "Created By",
];
const BUDGET_FIELDS: &[&str] = &[
    "Budget Line",
    "Department",
    "Fiscal Year",
    "Fiscal Period",
    "Budget Amount",
    "Actual Amount",
    "Variance",
    "Owner",
    "Region",
];
const AP_FIELDS: &[&str] = &[
    "Invoice ID",
    "Vendor",
    "Invoice Date",
    "Due Date",
    "Amount",
    "Currency",
    "Status",
    "Paid Date",
    "PO Number",
    "Entity",
];
const ORDER_FIELDS: &[&str] = &[
    "Order ID",
    "Order Date",
    "Ship Date",
    "Customer",
    "Segment",
    "Region",
    "Product",
    "Category",
    "Sales",
    "Quantity",
    "Discount",
    "Profit",
    "Sales Rep",
];
const CUSTOMER_FIELDS: &[&str] =
    &["Customer ID", "Customer Name", "Segment", "Industry", "Country", "Region", "Account Owner", "Created Date"];
const CAMPAIGN_FIELDS: &[&str] = &[
    "Campaign ID",
    "Campaign Name",
    "Channel",
    "Start Date",
    "End Date",
    "Spend",
    "Impressions",
    "Clicks",
    "Leads",
    "Revenue",
];
const PEOPLE_FIELDS: &[&str] =
    &["Employee ID", "Name", "Department", "Manager", "Hire Date", "Location", "Job Level", "Salary Band", "Status"];
const INVENTORY_FIELDS: &[&str] =
    &["SKU", "Warehouse", "On Hand", "Reserved", "Reorder Point", "Supplier", "Last Received", "Unit Cost"];
const KPI_FIELDS: &[&str] = &["Metric", "Period", "Value", "Target", "Owner", "Business Unit", "Status"];

const DATASOURCES: &[DsSpec] = &[
    // Finance: three groups of duplicates and one deprecated source (8 datasources).
    ds(
        "Finance General Ledger",
        "Finance",
        "postgres",
        "pg-fin-01.corp.example.com",
        "finance",
        "public.gl_entries",
        GL_FIELDS,
        true,
        Some("Certified source for GL reporting. Owner: Finance Systems."),
        &["certified-content"],
        Some("tbaker"),
        0,
    ),
    ds(
        "Finance GL",
        "Finance",
        "postgres",
        "pg-fin-01.corp.example.com",
        "finance",
        "public.gl_entries",
        GL_FIELDS,
        false,
        None,
        &[],
        Some("lwong"),
        2,
    ),
    ds(
        "GL Entries (copy)",
        "Finance",
        "postgres",
        "pg-fin-01.corp.example.com",
        "finance",
        "public.gl_entries",
        GL_FIELDS,
        false,
        None,
        &[],
        None,
        3,
    ),
    ds(
        "Budget Actuals",
        "Finance",
        "snowflake",
        "acme.snowflakecomputing.com",
        "FIN_DB",
        "PUBLIC.BUDGET_ACTUALS",
        BUDGET_FIELDS,
        true,
        Some("Certified: monthly budget vs actuals."),
        &[],
        Some("tbaker"),
        0,
    ),
    ds(
        "Budget_Actuals_v2",
        "Finance",
        "snowflake",
        "acme.snowflakecomputing.com",
        "FIN_DB",
        "PUBLIC.BUDGET_ACTUALS",
        BUDGET_FIELDS,
        false,
        None,
        &[],
        None,
        1,
    ),
    ds(
        "AP Invoices",
        "Finance",
        "sqlserver",
        "sql-erp-02.corp.example.com",
        "ERP",
        "dbo.ap_invoices",
        AP_FIELDS,
        false,
        None,
        &[],
        None,
        0,
    ),
    ds(
        "Accounts Payable Invoices",
        "Finance",
        "sqlserver",
        "sql-erp-02.corp.example.com",
        "ERP",
        "dbo.ap_invoices",
        AP_FIELDS,
        false,
        None,
        &[],
        None,
        2,
    ),
    ds(
        "Finance GL (legacy)",
        "Finance",
        "sqlserver",
        "sql-legacy-01.corp.example.com",
        "FINLEGACY",
        "dbo.gl",
        LEGACY_GL_FIELDS,
        false,
        Some("Deprecated: use 'Finance General Ledger' instead. Retires March 2026."),
        &["deprecated"],
        Some("tbaker"),
        0,
    ),
    // Sales
    ds(
        "Sales Orders",
        "Sales",
        "snowflake",
        "acme.snowflakecomputing.com",
        "SALES_DB",
        "PUBLIC.ORDERS",
        ORDER_FIELDS,
        true,
        Some("Certified order data, refreshed hourly."),
        &["certified-content"],
        Some("mgarcia"),
        0,
    ),
    ds(
        "Sales Orders (copy)",
        "Sales",
        "snowflake",
        "acme.snowflakecomputing.com",
        "SALES_DB",
        "PUBLIC.ORDERS",
        ORDER_FIELDS,
        false,
        None,
        &[],
        None,
        1,
    ),
    ds(
        "Sales_Orders_v2",
        "Sales",
        "snowflake",
        "acme.snowflakecomputing.com",
        "SALES_DB",
        "PUBLIC.ORDERS",
        ORDER_FIELDS,
        false,
        None,
        &[],
        None,
        2,
    ),
    ds(
        "Customer Master",
        "Sales",
        "postgres",
        "pg-crm-01.corp.example.com",
        "crm",
        "public.customers",
        CUSTOMER_FIELDS,
        true,
        Some("Certified customer dimension."),
        &[],
        None,
        0,
    ),
    ds(
        "Customer Master Extract",
        "Sales",
        "postgres",
        "pg-crm-01.corp.example.com",
        "crm",
        "public.customers",
        CUSTOMER_FIELDS,
        false,
        None,
        &[],
        None,
        1,
    ),
    ds(
        "Sales Targets (old)",
        "Sales",
        "excel-direct",
        "",
        "targets_2024.xlsx",
        "Targets$",
        KPI_FIELDS,
        false,
        Some("Deprecated: use 'Company KPIs' instead."),
        &["deprecated"],
        None,
        0,
    ),
    // Marketing (John Smith owns some)
    ds(
        "Campaign Performance",
        "Marketing",
        "redshift",
        "rs-mkt.corp.example.com",
        "marketing",
        "public.campaign_daily",
        CAMPAIGN_FIELDS,
        true,
        Some("Certified campaign metrics."),
        &[],
        Some("slee"),
        0,
    ),
    ds(
        "Campaign Performance - Old",
        "Marketing",
        "redshift",
        "rs-mkt-old.corp.example.com",
        "marketing",
        "public.campaigns",
        CAMPAIGN_FIELDS,
        false,
        Some("Deprecated: use 'Campaign Performance' instead."),
        &["deprecated"],
        Some("jsmith"),
        3,
    ),
    ds(
        "Leads",
        "Marketing",
        "postgres",
        "pg-crm-01.corp.example.com",
        "crm",
        "public.leads",
        CUSTOMER_FIELDS,
        false,
        None,
        &[],
        Some("jsmith"),
        0,
    ),
    ds(
        "Email Engagement",
        "Marketing",
        "redshift",
        "rs-mkt.corp.example.com",
        "marketing",
        "public.email_events",
        CAMPAIGN_FIELDS,
        false,
        None,
        &[],
        Some("jsmith"),
        2,
    ),
    ds(
        "Web Sessions",
        "Marketing",
        "bigquery",
        "bigquery.googleapis.com",
        "acme-web",
        "analytics.sessions",
        CAMPAIGN_FIELDS,
        false,
        None,
        &[],
        None,
        4,
    ),
    // HR
    ds(
        "Employee Roster",
        "HR",
        "postgres",
        "pg-hr-01.corp.example.com",
        "hris",
        "public.employees",
        PEOPLE_FIELDS,
        true,
        Some("Certified HRIS extract."),
        &["PII", "confidential"],
        Some("echen"),
        0,
    ),
    ds(
        "Compensation",
        "HR",
        "postgres",
        "pg-hr-01.corp.example.com",
        "hris",
        "public.compensation",
        PEOPLE_FIELDS,
        false,
        None,
        &["confidential", "restricted"],
        Some("echen"),
        0,
    ),
    ds(
        "Headcount",
        "HR",
        "postgres",
        "pg-hr-01.corp.example.com",
        "hris",
        "public.employees",
        PEOPLE_FIELDS,
        false,
        None,
        &["PII"],
        None,
        2,
    ),
    // Operations
    ds(
        "Inventory Levels",
        "Operations",
        "sqlserver",
        "sql-erp-02.corp.example.com",
        "ERP",
        "dbo.inventory",
        INVENTORY_FIELDS,
        true,
        Some("Certified inventory snapshot."),
        &[],
        Some("dkim"),
        0,
    ),
    ds(
        "Shipments",
        "Operations",
        "sqlserver",
        "sql-erp-02.corp.example.com",
        "ERP",
        "dbo.shipments",
        ORDER_FIELDS,
        false,
        None,
        &[],
        None,
        0,
    ),
    ds(
        "Shipments Copy",
        "Operations",
        "sqlserver",
        "sql-erp-02.corp.example.com",
        "ERP",
        "dbo.shipments",
        ORDER_FIELDS,
        false,
        None,
        &[],
        None,
        1,
    ),
    // Executive
    ds(
        "Company KPIs",
        "Executive",
        "snowflake",
        "acme.snowflakecomputing.com",
        "EXEC_DB",
        "PUBLIC.KPIS",
        KPI_FIELDS,
        true,
        Some("Certified KPI source for the board pack."),
        &["sensitive"],
        Some("lwong"),
        0,
    ),
];

const LEGACY_GL_FIELDS: &[&str] = &[
    "Entry ID",
    "Posting Date",
    "Account",
    "Cost Center",
    "Amount",
    "Currency",
    "Fiscal Period",
    "Legacy Cost Center",
];

#[allow(clippy::too_many_arguments)]
const fn ds(
    name: &'static str,
    team: &'static str,
    kind: &'static str,
    server: &'static str,
    database: &'static str,
    table: &'static str,
    fields: &'static [&'static str],
    certified: bool,
    note: Option<&'static str>,
    tags: &'static [&'static str],
    owner: Option<&'static str>,
    drop: usize,
) -> DsSpec {
    DsSpec { name, team, kind, server, database, table, fields, certified, note, tags, owner, drop }
}

fn slug(name: &str) -> String {
    name.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-').collect()
}

struct Gen {
    rng: Rng,
    now: DateTime<Utc>,
    site: Site,
    /// user name -> index
    users: BTreeMap<String, usize>,
    /// team -> member user ids
    team_members: BTreeMap<&'static str, Vec<String>>,
    /// team -> (top project id, all project ids of the team)
    team_projects: BTreeMap<&'static str, (String, Vec<String>)>,
    group_ids: BTreeMap<String, String>,
    content_urls: BTreeSet<String>,
    names_in_project: BTreeSet<(String, String)>,
    /// team -> datasource indexes
    team_ds: BTreeMap<&'static str, Vec<usize>>,
}

impl Gen {
    fn days_ago(&mut self, lo: i64, hi: i64) -> DateTime<Utc> {
        self.now - Duration::seconds(self.rng.range(lo * 86_400, hi * 86_400))
    }

    fn user_id(&self, name: &str) -> String {
        self.site.users[self.users[name]].id.clone()
    }

    fn add_user(&mut self, name: String, full: String, role: &str) -> String {
        let id = self.rng.luid();
        let last_login = if role == "Unlicensed" || self.rng.chance(0.05) {
            if self.rng.chance(0.5) { None } else { Some(self.days_ago(200, 700)) }
        } else {
            Some(self.days_ago(0, 45))
        };
        let email = format!("{}@example.com", name.replace(' ', "."));
        self.users.insert(name.clone(), self.site.users.len());
        self.site.users.push(User {
            id: id.clone(),
            name,
            full_name: full,
            email,
            site_role: role.into(),
            last_login,
            auth_setting: None,
        });
        id
    }

    fn add_project(&mut self, name: &str, parent: Option<&str>, owner: &str, perms: &str) -> String {
        let id = self.rng.luid();
        let created = self.days_ago(700, 1500);
        self.site.projects.push(Project {
            id: id.clone(),
            name: name.into(),
            parent_id: parent.map(str::to_string),
            owner_id: owner.into(),
            content_permissions: perms.into(),
            description: if parent.is_none() { format!("{name} team content") } else { String::new() },
            created_at: Some(created),
            updated_at: Some(created),
        });
        id
    }

    fn unique_url(&mut self, name: &str) -> String {
        let base = slug(name);
        let mut url = base.clone();
        let mut n = 1;
        while !self.content_urls.insert(url.clone()) {
            n += 1;
            url = format!("{base}_{n}");
        }
        url
    }

    fn unique_name(&mut self, project: &str, name: String) -> String {
        let mut candidate = name.clone();
        let mut n = 1;
        while !self.names_in_project.insert((project.to_string(), candidate.clone())) {
            n += 1;
            candidate = format!("{name} ({n})");
        }
        candidate
    }

    fn rule(&mut self, kind: &str, id: &str, gkind: &str, gid: &str, caps: &[(&str, Mode)]) {
        self.site.permissions.push(PermissionRule {
            resource: ResourceRef { kind: kind.into(), id: id.into() },
            grantee: GranteeRef { kind: gkind.into(), id: gid.into() },
            capabilities: caps.iter().map(|(n, m)| (n.to_string(), *m)).collect(),
        });
    }
}

const VIEWER: &[(&str, Mode)] = &[
    ("Read", Mode::Allow),
    ("Filter", Mode::Allow),
    ("ViewComments", Mode::Allow),
    ("AddComment", Mode::Allow),
    ("ExportImage", Mode::Allow),
];
const EXPLORER: &[(&str, Mode)] = &[
    ("Read", Mode::Allow),
    ("Filter", Mode::Allow),
    ("ViewComments", Mode::Allow),
    ("AddComment", Mode::Allow),
    ("ExportImage", Mode::Allow),
    ("ExportData", Mode::Allow),
    ("ViewUnderlyingData", Mode::Allow),
    ("ShareView", Mode::Allow),
];
const BROAD: &[(&str, Mode)] =
    &[("Read", Mode::Allow), ("Write", Mode::Allow), ("Delete", Mode::Allow), ("ChangePermissions", Mode::Allow)];

/// Generates a site.
pub fn generate(opts: &Options) -> Site {
    let now: DateTime<Utc> = DateTime::parse_from_rfc3339(DEMO_NOW).expect("constant date").with_timezone(&Utc);
    let demo = opts.scale == 0;
    let n_workbooks = if demo { 847 } else { opts.scale };
    let mut g = Gen {
        rng: Rng(opts.seed ^ 0x7AB_F10E),
        now,
        site: Site {
            format: FORMAT.into(),
            now,
            site: SiteInfo { id: String::new(), name: "Demo".into(), content_url: "demo".into() },
            users: Vec::with_capacity(n_workbooks / 5 + 130),
            groups: vec![],
            projects: vec![],
            datasources: vec![],
            workbooks: Vec::with_capacity(n_workbooks),
            permissions: Vec::with_capacity(n_workbooks * 2),
            subscriptions: vec![],
            default_permissions: vec![],
            webhooks: vec![],
            favorites: vec![],
            data_alerts: vec![],
        },
        users: BTreeMap::new(),
        team_members: BTreeMap::new(),
        team_projects: BTreeMap::new(),
        group_ids: BTreeMap::new(),
        content_urls: BTreeSet::new(),
        names_in_project: BTreeSet::new(),
        team_ds: BTreeMap::new(),
    };
    g.site.site.id = g.rng.luid();

    // ---- users
    for p in PEOPLE {
        let id = g.add_user(p.user.into(), p.full.into(), p.role);
        for t in p.teams {
            g.team_members.entry(t).or_default().push(id.clone());
        }
    }
    let n_users = if demo { 120 } else { (n_workbooks / 5).max(20) };
    let team_names: Vec<&'static str> = TEAMS.iter().map(|t| t.name).collect();
    let mut contractors = Vec::new();
    let mut i = 0usize;
    while g.site.users.len() < n_users {
        let first = FIRST[(i * 7 + g.rng.below(3)) % FIRST.len()];
        let last = LAST[(i * 13 + g.rng.below(5)) % LAST.len()];
        let mut name = format!("{}{}", first[..1].to_lowercase(), last.to_lowercase());
        if g.users.contains_key(&name) {
            name = format!("{}.{}{}", first.to_lowercase(), last.to_lowercase(), i);
        }
        let role = match g.rng.below(100) {
            0..=3 => "Unlicensed",
            4..=30 => "Viewer",
            31..=70 => "Explorer",
            71..=80 => "ExplorerCanPublish",
            _ => "Creator",
        };
        let id = g.add_user(name, format!("{first} {last}"), role);
        if i % 17 == 5 {
            contractors.push(id.clone());
        }
        let team = team_names[(i + g.rng.below(2)) % team_names.len()];
        g.team_members.entry(team).or_default().push(id);
        i += 1;
    }

    // ---- groups
    let all: Vec<String> = g.site.users.iter().map(|u| u.id.clone()).collect();
    let mut groups = vec![("All Users".to_string(), all)];
    for t in TEAMS {
        groups.push((t.name.to_string(), g.team_members.get(t.name).cloned().unwrap_or_default()));
    }
    groups.push((
        "Data Engineering".into(),
        g.team_members.get("Operations").map(|m| m.iter().take(6).cloned().collect()).unwrap_or_default(),
    ));
    groups.push(("Contractors".into(), contractors));
    if !demo {
        // Extra teams of about 50 people each.
        let extra = n_users / 50;
        for k in 0..extra {
            let start = (k * 50) % g.site.users.len();
            let members = g.site.users.iter().skip(start).take(50).map(|u| u.id.clone()).collect();
            groups.push((format!("Team {:03}", k + 1), members));
        }
    }
    for (name, members) in groups {
        let id = g.rng.luid();
        g.group_ids.insert(name.clone(), id.clone());
        g.site.groups.push(Group { id, name, members, minimum_site_role: None });
    }

    // ---- projects
    let admin = g.user_id("admin");
    g.add_project("default", None, &admin, "ManagedByOwner");
    for t in TEAMS {
        let lead = g.user_id(lead_of(t.name));
        let top = g.add_project(t.name, None, &lead, "ManagedByOwner");
        let mut all_ids = vec![top.clone()];
        for c in t.children {
            let (owner, perms) = match (*c, t.name) {
                ("Web Analytics", _) => (g.user_id("jsmith"), "ManagedByOwner"),
                ("Confidential", _) => (lead.clone(), "LockedToProject"),
                _ => (lead.clone(), "ManagedByOwner"),
            };
            let child = g.add_project(c, Some(&top), &owner, perms);
            all_ids.push(child.clone());
            if *c == "Quarterly Reporting" {
                all_ids.push(g.add_project("Year-End Close", Some(&child), &lead, "ManagedByOwner"));
            }
        }
        if !demo {
            let extra = (n_workbooks / 200).saturating_sub(20) * t.weight / 87;
            for k in 0..extra {
                let parent = all_ids[k % all_ids.len()].clone();
                all_ids.push(g.add_project(
                    &format!("{} Area {:03}", t.name, k + 1),
                    Some(&parent),
                    &lead,
                    "ManagedByOwner",
                ));
            }
        }
        g.team_projects.insert(t.name, (top, all_ids));
    }
    let sandbox = g.add_project("Sandbox", None, &admin, "ManagedByOwner");
    let archive = g.add_project("Archive", None, &admin, "LockedToProject");
    let insights = g.add_project("Admin Insights", None, &admin, "LockedToProject");

    // ---- datasources
    let mut story_ds = BTreeMap::new();
    for spec in DATASOURCES {
        let project = g.team_projects[spec.team].0.clone();
        let owner = match spec.owner {
            Some(u) => g.user_id(u),
            None => {
                let k = g.rng.below(g.team_members[spec.team].len());
                g.team_members[spec.team][k].clone()
            }
        };
        let fields: Vec<String> = spec
            .fields
            .iter()
            .take(spec.fields.len() - spec.drop.min(spec.fields.len() - 1))
            .map(|f| f.to_string())
            .collect();
        let idx = push_datasource(
            &mut g,
            spec.name,
            &project,
            &owner,
            spec.kind,
            spec.server,
            spec.database,
            spec.table,
            fields,
            spec.certified,
            spec.note,
            spec.tags,
        );
        story_ds.insert(spec.name, idx);
        g.team_ds.entry(spec.team).or_default().push(idx);
    }
    for name in ["Site Content", "TS Events", "TS Users"] {
        let idx = push_datasource(
            &mut g,
            name,
            &insights,
            &admin,
            "hyper",
            "",
            "Admin Insights",
            name,
            vec![],
            false,
            None,
            &[],
        );
        g.site.datasources[idx].description = "Admin Insights data, refreshed daily by Tableau.".into();
    }
    // More datasources: about one per 15 workbooks in scaled sites, a few in the demo.
    let extra_ds = if demo { 30 } else { (n_workbooks / 15).saturating_sub(DATASOURCES.len()) };
    let pools: &[(&str, &[&str])] = &[
        ("Finance", GL_FIELDS),
        ("Marketing", CAMPAIGN_FIELDS),
        ("Sales", ORDER_FIELDS),
        ("HR", PEOPLE_FIELDS),
        ("Operations", INVENTORY_FIELDS),
        ("Executive", KPI_FIELDS),
    ];
    for k in 0..extra_ds {
        let (team, fields) = pools[k % pools.len()];
        let t = TEAMS.iter().find(|t| t.name == team).expect("team");
        let topic = *g.rng.pick(t.topics);
        let name = format!("{topic} {}", ["Extract", "Data", "Source", "Feed", "Mart"][k % 5]);
        let k = g.rng.below(g.team_projects[team].1.len());
        let project = g.team_projects[team].1[k].clone();
        let name = g.unique_name(&project, name);
        let k = g.rng.below(g.team_members[team].len());
        let owner = g.team_members[team][k].clone();
        let table = format!("public.{}", slug(topic).to_lowercase());
        let keep = fields.len() - g.rng.below(3);
        let f = fields.iter().take(keep).map(|s| s.to_string()).collect();
        let idx = push_datasource(
            &mut g,
            &name,
            &project,
            &owner,
            "postgres",
            "pg-dw-01.corp.example.com",
            "warehouse",
            &table,
            f,
            false,
            None,
            &[],
        );
        g.team_ds.entry(team).or_default().push(idx);
    }

    // ---- workbooks
    let weights: usize = TEAMS.iter().map(|t| t.weight).sum();
    let mut plan: Vec<(&'static str, usize)> = Vec::new(); // (team or "", count)
    if demo {
        plan.extend([
            ("Finance", 120),
            ("Marketing", 150),
            ("Sales", 200),
            ("HR", 60),
            ("Operations", 150),
            ("Executive", 50),
            ("", 117),
        ]);
    } else {
        let mut left = n_workbooks;
        for t in TEAMS {
            let n = n_workbooks * t.weight / (weights + 13);
            plan.push((t.name, n));
            left -= n;
        }
        plan.push(("", left));
    }
    let jsmith = g.user_id("jsmith");
    let mut john_left = 17usize;
    let mut finance_index = 0usize;
    for (team, count) in plan {
        for k in 0..count {
            let (project, topics, owner) = if team.is_empty() {
                // Sandbox (and a few in default): personal experiments.
                let p = if k % 7 == 0 { g.site.projects[0].id.clone() } else { sandbox.clone() };
                let t = g.rng.pick(TEAMS);
                let u = g.site.users[g.rng.below(g.site.users.len())].id.clone();
                (p, t.topics, u)
            } else {
                // Half in the top-level project, the rest spread over the children.
                let n_ids = g.team_projects[team].1.len();
                let k = if g.rng.chance(0.5) { 0 } else { g.rng.below(n_ids) };
                let p = g.team_projects[team].1[k].clone();
                let t = TEAMS.iter().find(|t| t.name == team).expect("team");
                let members = &g.team_members[team];
                let pick = g.rng.below(members.len());
                let mut u = members[pick].clone();
                // John Smith owns a known number of workbooks (the offboarding story).
                if u == jsmith {
                    u = members[(members.iter().position(|m| *m == jsmith).unwrap_or(0) + 1) % members.len()].clone();
                }
                if team == "Marketing" && john_left > 0 && k % 7 == 0 {
                    u = jsmith.clone();
                    john_left -= 1;
                }
                (p, t.topics, u)
            };
            let topic = *g.rng.pick(topics);
            let period = *g.rng.pick(PERIODS);
            let kind = *g.rng.pick(KINDS);
            let name = g.unique_name(&project, format!("{period}{topic} {kind}"));
            // Usage story: Finance gets a fixed pattern; everything else a random mix.
            let profile = if team == "Finance" && demo {
                finance_index += 1;
                match finance_index {
                    1..=6 => Usage::Never,
                    7..=23 => Usage::Stale,
                    24..=25 => Usage::TooRecent,
                    26..=33 => Usage::Yesterday,
                    _ => Usage::Active,
                }
            } else {
                match g.rng.below(100) {
                    0..=4 => Usage::Never,
                    5..=17 => Usage::Stale,
                    18..=19 => Usage::TooRecent,
                    20..=27 => Usage::Yesterday,
                    _ => Usage::Active,
                }
            };
            push_workbook(&mut g, team, &name, &project, &owner, profile);
        }
    }
    let _ = archive;

    // Dependents of deprecated datasources, incl. one using a field the replacement lacks.
    if let Some(&legacy) = story_ds.get("Finance GL (legacy)") {
        let legacy_id = g.site.datasources[legacy].id.clone();
        let finance: Vec<String> = g.team_projects["Finance"].1.clone();
        for (n, w) in g.site.workbooks.iter_mut().filter(|w| finance.contains(&w.project_id)).skip(40).enumerate() {
            if n == 5 {
                break;
            }
            w.datasource_ids = vec![legacy_id.clone()];
            w.fields_used = vec!["Posting Date".into(), "Account".into(), "Amount".into()];
            if n == 0 {
                w.fields_used.push("Legacy Cost Center".into());
            }
        }
    }

    permissions(&mut g, demo);
    extras(&mut g, demo);
    g.site
}

#[derive(Clone, Copy)]
enum Usage {
    Never,
    Stale,
    TooRecent,
    Yesterday,
    Active,
}

fn push_datasource(
    g: &mut Gen,
    name: &str,
    project: &str,
    owner: &str,
    kind: &str,
    server: &str,
    database: &str,
    table: &str,
    fields: Vec<String>,
    certified: bool,
    note: Option<&str>,
    tags: &[&str],
) -> usize {
    let id = g.rng.luid();
    let conn = g.rng.luid();
    let created = g.days_ago(200, 1200);
    let updated = g.days_ago(1, 200).max(created);
    let hits = g.rng.below(5000) as u64;
    let last = if hits == 0 { None } else { Some(g.days_ago(0, 120)) };
    let url = g.unique_url(name);
    g.names_in_project.insert((project.to_string(), name.to_string()));
    let size = 100_000 + g.rng.below(400_000_000) as u64;
    g.site.datasources.push(Datasource {
        id,
        name: name.into(),
        project_id: project.into(),
        owner_id: owner.into(),
        tags: tags.iter().map(|t| t.to_string()).collect(),
        certified,
        certification_note: note.map(str::to_string),
        updated_at: updated,
        connection: Connection {
            kind: kind.into(),
            server: server.into(),
            database: database.into(),
            table: table.into(),
            custom_sql: None,
            id: conn,
            port: match kind {
                "postgres" | "redshift" => "5432".into(),
                "sqlserver" => "1433".into(),
                "snowflake" | "bigquery" => "443".into(),
                _ => String::new(),
            },
            username: if server.is_empty() { String::new() } else { "svc_tableau".into() },
        },
        fields,
        content_url: url,
        description: String::new(),
        created_at: Some(created),
        has_extracts: g.rng.chance(0.4),
        size,
        total_hits: hits,
        last_accessed_at: last,
    });
    g.site.datasources.len() - 1
}

fn push_workbook(g: &mut Gen, team: &str, name: &str, project: &str, owner: &str, usage: Usage) {
    let id = g.rng.luid();
    let created = match usage {
        Usage::TooRecent => g.days_ago(2, 25),
        Usage::Never | Usage::Stale => g.days_ago(180, 900),
        _ => g.days_ago(30, 900),
    };
    let updated = match usage {
        Usage::TooRecent => created,
        Usage::Never | Usage::Stale => {
            let t = g.days_ago(120, 400);
            t.max(created)
        }
        _ => {
            let t = g.days_ago(1, 120);
            t.max(created)
        }
    };
    let n_views = 1 + g.rng.below(5);
    let mut views = Vec::with_capacity(n_views);
    let first = g.rng.below(SHEETS.len());
    for v in 0..n_views {
        let (total, last) = match usage {
            Usage::Never | Usage::TooRecent => (0, None),
            Usage::Stale => {
                let t = g.rng.below(400) as u64;
                if t == 0 { (0, None) } else { (t, Some(g.days_ago(95, 400))) }
            }
            Usage::Yesterday if v == 0 => {
                (50 + g.rng.below(5000) as u64, Some(g.now - Duration::hours(20 + g.rng.below(8) as i64)))
            }
            _ => {
                let t = g.rng.below(3000) as u64;
                if t == 0 { (0, None) } else { (t, Some(g.days_ago(0, 60))) }
            }
        };
        let sheet = SHEETS[(first + v) % SHEETS.len()];
        views.push(View {
            id: g.rng.luid(),
            name: sheet.into(),
            total_views: total,
            last_viewed_at: last,
            tags: vec![],
            sheet_type: if v == 0 { "dashboard".into() } else { "view".into() },
        });
    }
    // A stale workbook whose views all came up zero would be "never viewed": keep the story.
    if matches!(usage, Usage::Stale) && views.iter().all(|v| v.last_viewed_at.is_none()) {
        views[0].total_views = 3;
        views[0].last_viewed_at = Some(g.days_ago(95, 400));
    }
    // Datasources: ~70 % use one or two of the team's published datasources.
    let mut datasource_ids = Vec::new();
    let mut fields_used = Vec::new();
    let pool_len = g.team_ds.get(team).map_or(0, Vec::len);
    if pool_len > 0 && g.rng.chance(0.7) {
        let n = 1 + usize::from(g.rng.chance(0.2));
        for _ in 0..n {
            let pick = g.rng.below(pool_len);
            let di = g.team_ds[team][pick];
            let ds = &g.site.datasources[di];
            if ds.name.contains("(legacy)") || datasource_ids.contains(&ds.id) || ds.fields.is_empty() {
                continue;
            }
            datasource_ids.push(ds.id.clone());
            let n_fields = ds.fields.len();
            let k = 2 + g.rng.below(4);
            for _ in 0..k {
                let pick = g.rng.below(n_fields);
                let f = g.site.datasources[di].fields[pick].clone();
                if !fields_used.contains(&f) {
                    fields_used.push(f);
                }
            }
        }
    }
    let mut tags = Vec::new();
    let sensitive_share = match team {
        "HR" | "Executive" => 0.35,
        "Finance" => 0.12,
        _ => 0.02,
    };
    if g.rng.chance(sensitive_share) {
        tags.push(g.rng.pick(&["sensitive", "confidential", "PII", "restricted"]).to_string());
    }
    if g.rng.chance(0.15) {
        tags.push(g.rng.pick(&["kpi", "weekly", "monthly", "executive", "draft", "certified-content"]).to_string());
    }
    let url = g.unique_url(name);
    let size = 40_000 + g.rng.below(80_000_000) as u64;
    let show_tabs = !g.rng.chance(0.2);
    let revision = 1 + g.rng.below(5) as u32;
    g.site.workbooks.push(Workbook {
        id,
        name: name.into(),
        project_id: project.into(),
        owner_id: owner.into(),
        tags,
        size,
        created_at: created,
        updated_at: updated,
        datasource_ids,
        views,
        content_url: url,
        description: String::new(),
        show_tabs,
        fields_used,
        revision,
    });
}

fn permissions(g: &mut Gen, demo: bool) {
    let all_users = g.group_ids["All Users"].clone();
    let contractors = g.group_ids["Contractors"].clone();
    // Project rules and defaults: the team can read its projects; leads can write.
    for t in TEAMS {
        let gid = g.group_ids[t.name].clone();
        let lead = g.user_id(lead_of(t.name));
        for pid in g.team_projects[t.name].1.clone() {
            g.rule("project", &pid, "group", &gid, &[("Read", Mode::Allow)]);
            g.rule("project", &pid, "user", &lead, &[("Read", Mode::Allow), ("Write", Mode::Allow)]);
        }
        let top = g.team_projects[t.name].0.clone();
        for (ct, caps) in
            [("workbooks", VIEWER), ("datasources", &[("Read", Mode::Allow), ("Connect", Mode::Allow)][..])]
        {
            g.site.default_permissions.push(DefaultPermissionRule {
                project_id: top.clone(),
                content_type: ct.into(),
                grantee: GranteeRef { kind: "group".into(), id: gid.clone() },
                capabilities: caps.iter().map(|(n, m)| (n.to_string(), *m)).collect(),
            });
        }
    }
    if let Some(p) = g.site.projects.iter().find(|p| p.name == "Confidential").map(|p| p.id.clone()) {
        g.rule("project", &p, "group", &contractors, &[("Read", Mode::Deny)]);
    }
    let sandbox = g.site.projects.iter().find(|p| p.name == "Sandbox").map(|p| p.id.clone()).unwrap_or_default();
    g.rule("project", &sandbox, "group", &all_users, &[("Read", Mode::Allow), ("Write", Mode::Allow)]);

    // Workbook and view rules.
    let project_team: BTreeMap<String, &'static str> =
        g.team_projects.iter().flat_map(|(t, (_, ids))| ids.iter().map(move |id| (id.clone(), *t))).collect();
    let mut broad_left = if demo { 7 } else { g.site.workbooks.len() / 150 };
    for wi in 0..g.site.workbooks.len() {
        let (wid, pid, sensitive, show_tabs, first_view) = {
            let w = &g.site.workbooks[wi];
            let s = w.tags.iter().any(|t| matches!(t.as_str(), "sensitive" | "confidential" | "PII" | "restricted"));
            (w.id.clone(), w.project_id.clone(), s, w.show_tabs, w.views.first().map(|v| v.id.clone()))
        };
        let team = project_team.get(&pid).copied();
        match team {
            Some(t) => {
                let gid = g.group_ids[t].clone();
                let caps = if g.rng.chance(0.3) { EXPLORER } else { VIEWER };
                g.rule("workbook", &wid, "group", &gid, caps);
                if g.rng.chance(0.25) {
                    let pick = g.rng.below(g.team_members[t].len());
                    let u = g.team_members[t][pick].clone();
                    g.rule(
                        "workbook",
                        &wid,
                        "user",
                        &u,
                        &[("Read", Mode::Allow), ("Filter", Mode::Allow), ("ExportData", Mode::Allow)],
                    );
                }
                if sensitive && broad_left > 0 && g.rng.chance(0.5) {
                    broad_left -= 1;
                    g.rule("workbook", &wid, "group", &all_users, BROAD);
                } else if sensitive && g.rng.chance(0.4) {
                    g.rule(
                        "workbook",
                        &wid,
                        "group",
                        &contractors,
                        &[("Read", Mode::Deny), ("ExportData", Mode::Deny)],
                    );
                }
            }
            None => {
                if g.rng.chance(0.3) {
                    g.rule("workbook", &wid, "group", &all_users, VIEWER);
                }
            }
        }
        // With tabs hidden, views carry their own permissions.
        if !show_tabs
            && let Some(v) = first_view
            && g.rng.chance(0.3)
        {
            let u = g.site.users[g.rng.below(g.site.users.len())].id.clone();
            g.rule("view", &v, "user", &u, &[("Read", Mode::Allow), ("ExportImage", Mode::Allow)]);
        }
    }
    // Datasource rules.
    let ds_team: Vec<(String, Option<&'static str>, bool)> = g
        .site
        .datasources
        .iter()
        .map(|d| {
            (
                d.id.clone(),
                project_team.get(&d.project_id).copied(),
                d.tags.iter().any(|t| t == "PII" || t == "confidential"),
            )
        })
        .collect();
    for (k, (id, team, sensitive)) in ds_team.into_iter().enumerate() {
        if let Some(t) = team {
            let gid = g.group_ids[t].clone();
            g.rule("datasource", &id, "group", &gid, &[("Read", Mode::Allow), ("Connect", Mode::Allow)]);
            if sensitive || k % 9 == 0 {
                // Overly broad: everyone may connect to (and for some, overwrite) the source.
                let caps: &[(&str, Mode)] = if sensitive {
                    &[("Read", Mode::Allow), ("Connect", Mode::Allow)]
                } else {
                    &[("Read", Mode::Allow), ("Connect", Mode::Allow), ("Write", Mode::Allow)]
                };
                g.rule("datasource", &id, "group", &all_users, caps);
            }
        }
    }
}

fn extras(g: &mut Gen, demo: bool) {
    let n_users = g.site.users.len();
    let n_wb = g.site.workbooks.len();
    let jsmith = g.user_id("jsmith");
    let admin = g.user_id("admin");
    // Subscriptions: on workbooks and views, including John's content and stale Finance workbooks.
    let n_subs = if demo { 40 } else { n_wb / 20 };
    let johns: Vec<usize> = (0..n_wb).filter(|&i| g.site.workbooks[i].owner_id == jsmith).collect();
    let finance_top = g.team_projects["Finance"].1.clone();
    let stale_finance: Vec<usize> = (0..n_wb)
        .filter(|&i| {
            let w = &g.site.workbooks[i];
            finance_top.contains(&w.project_id) && w.last_viewed_at().is_none_or(|t| t < g.now - Duration::days(90))
        })
        .collect();
    for k in 0..n_subs {
        let wi = match k % 5 {
            0 if !johns.is_empty() => johns[k % johns.len()],
            1 if !stale_finance.is_empty() => stale_finance[k % stale_finance.len()],
            _ => g.rng.below(n_wb),
        };
        let user = if k % 11 == 0 { jsmith.clone() } else { g.site.users[g.rng.below(n_users)].id.clone() };
        let (kind, cid, subject) = {
            let w = &g.site.workbooks[wi];
            if k % 3 == 0 && !w.views.is_empty() {
                ("view", w.views[0].id.clone(), format!("{}: {}", w.name, w.views[0].name))
            } else {
                ("workbook", w.id.clone(), w.name.clone())
            }
        };
        let id = g.rng.luid();
        let schedule = g.rng.pick(SCHEDULES).to_string();
        g.site.subscriptions.push(Subscription {
            id,
            user_id: user,
            content: ResourceRef { kind: kind.into(), id: cid },
            subject,
            schedule,
        });
    }
    // Webhooks.
    for (name, event, owner) in [
        ("Notify ops on workbook deletes", "workbook-deleted", admin.clone()),
        ("Refresh failures to PagerDuty", "datasource-refresh-failed", admin.clone()),
        ("Campaign dashboard updates", "workbook-updated", jsmith.clone()),
    ] {
        let id = g.rng.luid();
        g.site.webhooks.push(Webhook {
            id,
            name: name.into(),
            event: event.into(),
            url: format!("https://hooks.example.com/tableau/{}", slug(name).to_lowercase()),
            owner_id: owner,
            enabled: true,
        });
    }
    // Favorites and data alerts.
    let n_fav = if demo { 30 } else { n_users / 10 };
    let mut seen = BTreeSet::new();
    for _ in 0..n_fav {
        let u = g.site.users[g.rng.below(n_users)].id.clone();
        let w = &g.site.workbooks[g.rng.below(n_wb)];
        if seen.insert((u.clone(), w.id.clone())) {
            g.site.favorites.push(Favorite {
                user_id: u,
                label: w.name.clone(),
                content: ResourceRef { kind: "workbook".into(), id: w.id.clone() },
            });
        }
    }
    let n_alerts = if demo { 6 } else { n_wb / 500 };
    for k in 0..n_alerts {
        let owner = if k < 2 { jsmith.clone() } else { g.site.users[g.rng.below(n_users)].id.clone() };
        let wi = if k < 2 && !johns.is_empty() { johns[k] } else { g.rng.below(n_wb) };
        let w = &g.site.workbooks[wi];
        let view = w.views[0].id.clone();
        let subject = format!("{} below target", w.name);
        let id = g.rng.luid();
        g.site.data_alerts.push(DataAlert {
            id,
            subject,
            owner_id: owner.clone(),
            view_id: view,
            recipients: vec![owner],
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finance_ids(s: &Site) -> Vec<String> {
        let top = s.projects.iter().find(|p| p.name == "Finance" && p.parent_id.is_none()).unwrap().id.clone();
        let mut ids = vec![top];
        loop {
            let more: Vec<String> = s
                .projects
                .iter()
                .filter(|p| p.parent_id.as_ref().is_some_and(|x| ids.contains(x)) && !ids.contains(&p.id))
                .map(|p| p.id.clone())
                .collect();
            if more.is_empty() {
                return ids;
            }
            ids.extend(more);
        }
    }

    #[test]
    fn same_seed_same_bytes() {
        let a = generate(&Options { scale: 500, seed: 3 }).to_json();
        assert_eq!(a, generate(&Options { scale: 500, seed: 3 }).to_json());
        assert_ne!(a, generate(&Options { scale: 500, seed: 4 }).to_json());
        assert_eq!(demo().to_json(), demo().to_json());
    }

    #[test]
    fn demo_tells_the_story() {
        let s = demo();
        s.check().unwrap();
        assert_eq!(s.workbooks.len(), 847);
        let fin = finance_ids(&s);
        assert!(fin.len() >= 4, "Finance has nested sub-projects");
        let cutoff = s.now - Duration::days(90);
        let stale = s
            .workbooks
            .iter()
            .filter(|w| {
                fin.contains(&w.project_id) && w.created_at < cutoff && w.last_viewed_at().is_none_or(|t| t < cutoff)
            })
            .count();
        assert!((15..=25).contains(&stale), "Finance stale-90 count {stale}");
        let never = s
            .workbooks
            .iter()
            .filter(|w| fin.contains(&w.project_id) && w.total_views() == 0 && w.created_at < cutoff)
            .count();
        assert!(never >= 3, "some never viewed: {never}");
        let john = s.users.iter().find(|u| u.name == "jsmith").unwrap();
        let owned = s.workbooks.iter().filter(|w| w.owner_id == john.id).count()
            + s.datasources.iter().filter(|d| d.owner_id == john.id).count();
        assert!((15..=25).contains(&owned), "John owns {owned}");
        let marketing = s.groups.iter().find(|g| g.name == "Marketing").unwrap();
        assert!(marketing.members.contains(&john.id));
        assert_eq!(s.users.iter().filter(|u| u.full_name.starts_with("John ")).count(), 2, "John is ambiguous");
        for n in ["Site Content", "TS Events", "TS Users"] {
            assert!(s.datasources.iter().any(|d| d.name == n));
        }
        let legacy = s.datasources.iter().find(|d| d.name == "Finance GL (legacy)").unwrap();
        assert!(s.workbooks.iter().filter(|w| w.datasource_ids.contains(&legacy.id)).count() >= 3);
        let finance_ds: Vec<&Datasource> = s.datasources.iter().filter(|d| d.project_id == fin[0]).collect();
        let mut keys: BTreeMap<(String, String, String), usize> = BTreeMap::new();
        for d in &finance_ds {
            *keys
                .entry((d.connection.server.clone(), d.connection.database.clone(), d.connection.table.clone()))
                .or_default() += 1;
        }
        assert!(keys.values().filter(|n| **n > 1).count() >= 3, "three duplicate groups in Finance");
        let all_users = s.groups.iter().find(|g| g.name == "All Users").unwrap();
        assert!(s.permissions.iter().any(|r| r.grantee.id == all_users.id && r.capabilities.contains_key("Delete")));
        assert!(s.permissions.iter().any(|r| r.capabilities.values().any(|m| *m == Mode::Deny)));
        assert!(s.subscriptions.len() >= 30);
        // view rules only where tabs are hidden
        for r in s.permissions.iter().filter(|r| r.resource.kind == "view") {
            let w = s.workbooks.iter().find(|w| w.views.iter().any(|v| v.id == r.resource.id)).unwrap();
            assert!(!w.show_tabs);
        }
        // one (resource, grantee) pair once
        let mut pairs = BTreeSet::new();
        for r in &s.permissions {
            assert!(pairs.insert((r.resource.id.clone(), r.grantee.id.clone())), "duplicate rule");
        }
    }

    #[test]
    fn scaled_site_counts() {
        let s = generate(&Options { scale: 1000, seed: 9 });
        s.check().unwrap();
        assert_eq!(s.workbooks.len(), 1000);
        assert_eq!(s.users.len(), 200);
        assert!(s.datasources.len() >= 60);
        assert_eq!(Site::from_json(&s.to_json()).unwrap(), s);
    }

    #[cfg(not(debug_assertions))]
    #[test]
    fn hundred_thousand_is_fast() {
        let t = std::time::Instant::now();
        let s = generate(&Options { scale: 100_000, seed: 1 });
        let took = t.elapsed();
        eprintln!("scale 100000: {took:?}");
        assert_eq!(s.workbooks.len(), 100_000);
        assert_eq!(s.users.len(), 20_000);
    }
}
#[cfg(test)]
mod tmp_dump {
    #[test]
    fn dump_demo() {
        std::fs::write("/tmp/demo.json", super::demo().to_json()).unwrap();
    }
}
