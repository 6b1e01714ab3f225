//! Unit tests of understanding and answering questions, on the demo site.

use super::*;

fn demo() -> Site {
    tabflow_site::generate::demo()
}

fn q(s: &str) -> Query {
    understand(s).unwrap_or_else(|e| panic!("{s}: {e}"))
}

#[test]
fn understands_the_kinds_of_question() {
    let c = q("How many workbooks are in the Finance project?");
    assert_eq!((c.kind, c.subject, c.project.as_deref()), (Kind::Count, Subject::Workbooks, Some("Finance")));
    let c = q("how many users are Creators");
    assert_eq!((c.kind, c.subject, c.role), (Kind::Count, Subject::Users, Some(Role::Creator)));
    let c = q("List all users in the Finance group");
    assert_eq!((c.kind, c.subject, c.group.as_deref()), (Kind::List, Subject::Users, Some("Finance")));
    let c = q("Who owns the Quarterly Revenue workbook?");
    assert_eq!((c.kind, c.subject, c.target.as_deref()), (Kind::Owner, Subject::Workbooks, Some("Quarterly Revenue")));
    let c = q("Which workbooks haven't been viewed in the last 30 days?");
    assert_eq!((c.kind, c.days), (Kind::NotViewed, Some(30)));
    let c = q("top 5 most viewed workbooks in Marketing");
    assert_eq!((c.kind, c.limit, c.project.as_deref()), (Kind::MostViewed, Some(5), Some("Marketing")));
    let c = q("users who have not signed in for 60 days");
    assert_eq!((c.kind, c.days), (Kind::NotSignedIn, Some(60)));
    let c = q("What datasources does Q3 Tax Tracker use?");
    assert_eq!((c.kind, c.target.as_deref()), (Kind::DatasourcesOf, Some("Q3 Tax Tracker")));
    let c = q("Which workbooks use the Finance GL datasource?");
    assert_eq!((c.kind, c.target.as_deref()), (Kind::WorkbooksUsing, Some("Finance GL")));
    let c = q("workbooks per project");
    assert_eq!((c.kind, c.dimension), (Kind::GroupBy, Some(Dimension::Project)));
    let c = q("how many workbooks does each owner have?");
    assert_eq!((c.kind, c.dimension), (Kind::GroupBy, Some(Dimension::Owner)));
    let c = q("Show John Smith's workbooks");
    assert_eq!((c.kind, c.owner.as_deref()), (Kind::List, Some("John Smith")));
    let c = q("Finance workbooks nobody has opened in six months");
    assert_eq!((c.kind, c.days, c.project.as_deref()), (Kind::NotViewed, Some(180), Some("Finance")));
    let c = q("workbooks that use deprecated datasources");
    assert_eq!((c.kind, c.target.as_deref()), (Kind::WorkbooksUsing, Some("deprecated")));
    let c = q("which users have never logged in?");
    assert_eq!((c.kind, c.never), (Kind::NotSignedIn, true));
}

#[test]
fn nonsense_is_not_understood_and_never_guessed() {
    for s in ["make me a sandwich", "", "what is the meaning of life"] {
        assert!(matches!(understand(s), Err(Error::NotUnderstood { .. })), "{s}: {:?}", understand(s));
    }
    let text = explain(&Error::NotUnderstood { question: "x".into() });
    assert!(text.contains("how many workbooks are in Finance"), "{text}");
}

#[test]
fn counts_match_the_site() {
    let site = demo();
    let finance = site.projects.iter().find(|p| p.name == "Finance").map(|p| p.id.clone()).unwrap();
    let mut tree: BTreeSet<String> = [finance].into();
    for _ in 0..5 {
        for p in &site.projects {
            if p.parent_id.as_ref().is_some_and(|x| tree.contains(x)) {
                tree.insert(p.id.clone());
            }
        }
    }
    let expected = site.workbooks.iter().filter(|w| tree.contains(&w.project_id)).count();
    let a = answer(&site, "how many workbooks are in Finance?").unwrap();
    assert_eq!(a.total, expected);
    assert_eq!(a.rows, vec![vec![json!(expected)]]);
    let creators =
        site.users.iter().filter(|u| u.site_role.contains("Creator") || u.site_role == "ServerAdministrator").count();
    assert_eq!(answer(&site, "how many users are Creators").unwrap().total, creators);
}

#[test]
fn names_are_grounded_or_questioned() {
    let site = demo();
    let a = answer(&site, "how many workbooks are in Finanse").unwrap();
    assert!(a.notes.iter().any(|n| n.contains("'Finanse' was read as the project 'Finance'")), "{:?}", a.notes);
    match answer(&site, "workbooks owned by John") {
        Err(Error::Ambiguous { candidates, choices, .. }) => {
            assert_eq!(choices, vec!["jsmith".to_string(), "jdoe".to_string()]);
            assert!(
                candidates.iter().any(|c| c.contains("jsmith")) && candidates.iter().any(|c| c.contains("jdoe")),
                "{candidates:?}"
            );
        }
        other => panic!("{other:?}"),
    }
    match answer(&site, "how many workbooks are in the Nowhere project") {
        Err(Error::NotFound { what: "project", wanted, .. }) => assert_eq!(wanted, "Nowhere"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn owner_of_a_datasource() {
    let site = demo();
    let d = site.datasources.iter().find(|d| d.name == "Sales Orders").unwrap();
    let owner = site.users.iter().find(|u| u.id == d.owner_id).unwrap();
    let a = answer(&site, "who owns sales orders?").unwrap();
    assert_eq!(a.rows.len(), 1, "{a:?}");
    assert_eq!(a.rows[0][3], json!(owner.name));
    assert!(render(&a, 10).contains(&owner.full_name));
}

#[test]
fn odd_input_never_panics() {
    const PIECES: &[&str] = &[
        "how",
        "many",
        "who",
        "owns",
        "\"",
        "'",
        "'s",
        "workbooks",
        "data",
        "sources",
        "in",
        "the",
        "Finance",
        "project",
        "not",
        "viewed",
        "in",
        "90",
        "days",
        "top",
        "per",
        "by",
        "owner",
        "use",
        "does",
        "?",
        ",",
        "é",
        "日本",
        "\u{201c}",
        "signed",
        "never",
        "John",
        "tagged",
        "group",
        "",
    ];
    let site = demo();
    let mut x: u64 = 7;
    for _ in 0..400 {
        let mut question = String::new();
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        for k in 0..(1 + (x >> 60)) {
            let n = ((x >> (k * 5 % 50)) as usize) % PIECES.len();
            question.push_str(PIECES[n]);
            if (x >> k) & 1 == 0 {
                question.push(' ');
            }
        }
        match answer(&site, &question) {
            Ok(a) => assert!(a.kind == Kind::Count || a.total >= a.rows.len()),
            Err(e) => assert!(!explain(&e).is_empty()),
        }
    }
}
