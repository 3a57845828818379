//! Listing: pages, sorts, filters and counts.

use runners_sdk::total_count;
use runners_sdk::types::{JsonDirection, RunnersSort};
use runners_tests::*;

#[tokio::test]
async fn list_defaults_to_8_sorted_by_name_with_the_total_count() {
    let server = TestServer::start().await;
    let admin = server.admin();
    for i in (0..10).rev() {
        create(&admin, &format!("runner {i:02}"), None).await;
    }
    let page = admin.runners_get().send().await.unwrap();
    assert_eq!(total_count(&page), Some(10));
    let runners = page.into_inner();
    assert_eq!(runners.len(), 8);
    let expected: Vec<String> = (0..8).map(|i| format!("runner-{i:02}")).collect();
    assert_eq!(slugs(&runners), expected);
}

#[tokio::test]
async fn pages_come_in_order_without_repeats_or_gaps() {
    let server = TestServer::start().await;
    let admin = server.admin();
    for i in 0..20 {
        // Many equal names: the order must still be total (ties by slug).
        create(&admin, &format!("shared {}", i % 3), None).await;
    }
    let (everything, _) = list_all(&admin, false).await;
    let mut paged = Vec::new();
    for page in 1..=7u32 {
        let response = admin
            .runners_get()
            .per_page(3u32)
            .page(page)
            .send()
            .await
            .unwrap();
        assert_eq!(total_count(&response), Some(20));
        paged.extend(response.into_inner());
    }
    assert_eq!(paged, everything);
    let past_end = admin
        .runners_get()
        .per_page(3u32)
        .page(8u32)
        .send()
        .await
        .unwrap();
    assert_eq!(past_end.status(), 200);
    assert_eq!(total_count(&past_end), Some(20));
    assert!(past_end.into_inner().is_empty());
    let far = admin
        .runners_get()
        .page(u32::MAX)
        .per_page(255u32)
        .send()
        .await
        .unwrap();
    assert!(far.into_inner().is_empty());
}

#[tokio::test]
async fn sort_by_name_and_by_created_in_both_directions() {
    let server = TestServer::start().await;
    let admin = server.admin();
    for (name, slug) in [("b", "b-2"), ("c", "c"), ("a", "a"), ("b", "b-1")] {
        create(&admin, name, Some(slug)).await;
    }
    let list = |sort, direction| {
        let admin = admin.clone();
        async move {
            let runners = admin
                .runners_get()
                .sort(sort)
                .direction(direction)
                .send()
                .await
                .unwrap();
            slugs(&runners.into_inner())
                .into_iter()
                .map(String::from)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        list(RunnersSort::Name, JsonDirection::Asc).await,
        ["a", "b-1", "b-2", "c"]
    );
    assert_eq!(
        list(RunnersSort::Name, JsonDirection::Desc).await,
        ["c", "b-2", "b-1", "a"]
    );
    assert_eq!(
        list(RunnersSort::Created, JsonDirection::Asc).await,
        ["b-2", "c", "a", "b-1"]
    );
    assert_eq!(
        list(RunnersSort::Created, JsonDirection::Desc).await,
        ["b-1", "a", "c", "b-2"]
    );
}

#[tokio::test]
async fn name_filter_is_exact_and_counts_only_matches() {
    let server = TestServer::start().await;
    let admin = server.admin();
    for name in ["gpu", "gpu", "GPU", "gpu 2"] {
        create(&admin, name, None).await;
    }
    let page = admin
        .runners_get()
        .name("gpu")
        .per_page(1u32)
        .send()
        .await
        .unwrap();
    assert_eq!(total_count(&page), Some(2));
    assert_eq!(page.into_inner().len(), 1);
}

#[tokio::test]
async fn search_is_case_insensitive_literal_and_matches_uuids() {
    let server = TestServer::start().await;
    let admin = server.admin();
    let (ampere, _) = create(&admin, "Ampere Altra", Some("arm-box")).await;
    create(&admin, "100% CPU", Some("full")).await;
    create(&admin, "a_b", Some("underscore")).await;
    create(&admin, "aXb", Some("no-underscore")).await;
    create(&admin, "ÉCOLE runner", Some("ecole")).await;
    let search = |text: String| {
        let admin = admin.clone();
        async move {
            let page = admin.runners_get().search(text).send().await.unwrap();
            let total = total_count(&page).unwrap();
            let mut found: Vec<String> = page.into_inner().into_iter().map(|r| r.slug).collect();
            found.sort();
            assert_eq!(total as usize, found.len());
            found
        }
    };
    assert_eq!(search("ampere".into()).await, ["arm-box"]);
    assert_eq!(search("ALTRA".into()).await, ["arm-box"]);
    assert_eq!(search("arm-b".into()).await, ["arm-box"]);
    assert_eq!(search("%".into()).await, ["full"]);
    assert_eq!(search("a_b".into()).await, ["underscore"]);
    assert_eq!(search("école".into()).await, ["ecole"]);
    let fragment = ampere.uuid.to_string()[9..18].to_uppercase();
    assert_eq!(search(fragment).await, ["arm-box"]);
    assert!(search("nothing-like-this".into()).await.is_empty());
}
