use cnet_api::v1::CreateNetworkRequest;
use cnet_tests::TestHost;

#[tokio::test]
#[ignore]
async fn perf() {
    let mut host = TestHost::new();
    host.start_daemon(std::path::Path::new(&std::env::var("PERF_CNETD").unwrap()));
    let mut api = host.api().await;
    api.networks.create_network(CreateNetworkRequest { name: "p".into(), ..Default::default() }).await.unwrap();
    let (a, _) = api.sandbox_on("a", "p").await;
    for i in 0..std::env::var("PERF_N").map(|v| v.parse().unwrap()).unwrap_or(3) {
        api.sandbox_on(&format!("c{i}"), "p").await;
    }
    std::fs::write("/tmp/dnsq.txt", "c1 A\nc2 A\nc0.p A\nC1 A\n").unwrap();
    let out = host.run_in(&a.netns_path, "dnsperf -s 127.0.0.11 -d /tmp/dnsq.txt -l 5 -c 2 -q 20 2>&1");
    println!("{}", String::from_utf8_lossy(&out.stdout));
    let pid = host.cnetd_pid().unwrap();
    println!("{}", std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap().lines().filter(|l| l.starts_with("VmRSS") || l.starts_with("Threads")).collect::<Vec<_>>().join("\n"));
}
