// The outbox dispatcher over a memory store: at least once, in order,
// backing off a consumer that fails, and waking on demand.
#include <gtest/gtest.h>

#include <mutex>
#include <thread>

#include "tessera/memory_store.hpp"
#include "tessera/outbox.hpp"
#include "tessera/session.hpp"

namespace tessera {
namespace {

using namespace std::chrono_literals;

// Fails its first `failures` deliveries, then keeps what it is given.
class Receiver final : public EventConsumer {
 public:
  explicit Receiver(int failures = 0) : failures_(failures) {}
  Status deliver(const Event& e) override {
    std::lock_guard lock(mu_);
    if (failures_ > 0) {
      --failures_;
      return fail(ErrorCode::epoch_unavailable, "not now");
    }
    got_.push_back(e);
    return {};
  }
  std::vector<Event> got() const {
    std::lock_guard lock(mu_);
    return got_;
  }

 private:
  mutable std::mutex mu_;
  int failures_;
  std::vector<Event> got_;
};

OutboxOptions manual() {
  OutboxOptions o;
  o.poll_interval = std::chrono::hours{1};  // rounds only when asked (run_once)
  o.first_backoff = 1s;
  return o;
}

TEST(OutboxDispatcher, DeliversInOrderAndMarksDelivered) {
  auto store = make_memory_store();
  ManualClock clock;
  Receiver r;
  OutboxDispatcher d(*store->outbox(), {&r}, manual(), clock);
  ASSERT_TRUE(store->bump_epoch("alice"));
  ASSERT_TRUE(store->bump_epoch("bob"));
  ASSERT_TRUE(store->bump_epoch("alice"));
  const DispatchReport report = d.run_once();
  EXPECT_EQ(report.delivered, 3u);
  ASSERT_EQ(r.got().size(), 3u);
  EXPECT_EQ(r.got()[0].subject, "alice");
  EXPECT_EQ(r.got()[1].subject, "bob");
  EXPECT_EQ(r.got()[2].epoch, 2u);
  EXPECT_EQ(d.run_once().delivered, 0u) << "never twice once delivered";
}

TEST(OutboxDispatcher, AFailingConsumerIsRetriedWithBackoffUntilItTakesTheEvent) {
  auto store = make_memory_store();
  ManualClock clock;
  Receiver r(2);
  OutboxDispatcher d(*store->outbox(), {&r}, manual(), clock);
  ASSERT_TRUE(store->bump_epoch("carol"));
  EXPECT_EQ(d.run_once().retried, 1u);
  EXPECT_EQ(d.run_once().retried, 0u) << "not due before its backoff (1 s)";
  clock.advance(1s);
  EXPECT_EQ(d.run_once().retried, 1u);
  clock.advance(1s);
  EXPECT_EQ(d.run_once().delivered, 0u) << "the second backoff is 2 s";
  clock.advance(1s);
  const DispatchReport last = d.run_once();
  EXPECT_EQ(last.delivered, 1u);
  ASSERT_EQ(r.got().size(), 1u);
  EXPECT_EQ(r.got()[0].attempts, 2u);
}

TEST(OutboxDispatcher, ARefusalEndsTheRoundAndTheRestWaitsWithIt) {
  auto store = make_memory_store();
  ManualClock clock;
  Receiver r(1);
  OutboxDispatcher d(*store->outbox(), {&r}, manual(), clock);
  for (const char* s : {"e1", "e2", "e3"}) ASSERT_TRUE(store->bump_epoch(s));
  const DispatchReport first = d.run_once();
  EXPECT_EQ(first.retried, 1u);
  EXPECT_EQ(first.delivered, 0u)
      << "the two behind it are not tried against a consumer that is down";
  EXPECT_EQ(d.run_once().delivered, 0u) << "released until the failed one is due";
  clock.advance(1s);
  EXPECT_EQ(d.run_once().delivered, 3u);
  ASSERT_EQ(r.got().size(), 3u);
  EXPECT_EQ(r.got()[0].subject, "e1") << "still oldest first";
  EXPECT_EQ(r.got()[0].attempts, 1u);
  EXPECT_EQ(r.got()[1].attempts, 0u) << "released, not failed";
}

TEST(OutboxDispatcher, AConsumerThatIsDownHoldsBackNoneOfTheOthers) {
  auto store = make_memory_store();
  ManualClock clock;
  Receiver down(2), up;
  OutboxDispatcher d(*store->outbox(), {&down, &up}, manual(), clock);
  for (const char* s : {"e1", "e2", "e3"}) ASSERT_TRUE(store->bump_epoch(s));
  const DispatchReport first = d.run_once();
  EXPECT_EQ(first.retried, 1u);
  EXPECT_EQ(first.delivered, 0u) << "not delivered until every consumer took it";
  EXPECT_EQ(up.got().size(), 3u) << "the consumer that is up got all three at once";
  EXPECT_TRUE(down.got().empty());
  ASSERT_TRUE(store->bump_epoch("e4"));
  EXPECT_EQ(d.run_once().delivered, 0u);
  EXPECT_EQ(up.got().size(), 4u) << "and keeps getting new ones while the other is paused";
  clock.advance(1s);
  EXPECT_EQ(d.run_once().retried, 1u) << "the second refusal: paused 2 s";
  clock.advance(2s);
  const DispatchReport back = d.run_once();
  EXPECT_EQ(back.delivered, 4u);
  ASSERT_EQ(down.got().size(), 4u);
  EXPECT_EQ(down.got()[0].subject, "e1");
  EXPECT_EQ(up.got().size(), 4u) << "never given twice by one dispatcher";
  EXPECT_EQ(d.run_once().delivered, 0u);
}

TEST(OutboxDispatcher, AWakeDeliversWithoutWaitingForThePoll) {
  auto store = make_memory_store();
  Receiver r;
  OutboxOptions o;
  o.poll_interval = std::chrono::hours{1};
  OutboxDispatcher d(*store->outbox(), {&r}, o, SystemClock::instance());
  ASSERT_TRUE(store->bump_epoch("dave"));
  d.wake();
  for (int i = 0; i < 200 && r.got().empty(); ++i) std::this_thread::sleep_for(10ms);
  ASSERT_EQ(r.got().size(), 1u);
}

TEST(OutboxDispatcher, EventIdsAreStableAndDistinct) {
  Event a{.seq = 1, .at = UnixMillis(std::chrono::milliseconds(1'700'000'000'000))};
  Event b = a;
  b.seq = 2;
  EXPECT_EQ(a.id(), a.id());
  EXPECT_NE(a.id(), b.id());
  EXPECT_EQ(a.id().size(), 4u + 26u);
  EXPECT_LT(a.id(), b.id()) << "sortable";
  EXPECT_EQ(event_type_from_string(to_string(EventType::replay_detected)),
            EventType::replay_detected);
  EXPECT_FALSE(event_type_from_string("nope"));
}

}  // namespace
}  // namespace tessera
