#include "tessera/ulid.hpp"

#include <gtest/gtest.h>

#include <set>
#include <thread>

namespace tessera {
namespace {

TEST(Ulid, TextRoundTripsAndCarriesTheTimestamp) {
  ManualClock clock;
  DeterministicRandom random(1);
  UlidGenerator gen(clock, random);
  const Ulid id = gen.next();
  const std::string text = id.to_string();
  ASSERT_EQ(text.size(), 26u);
  const auto parsed = Ulid::parse(text);
  ASSERT_TRUE(parsed.has_value());
  EXPECT_EQ(*parsed, id);
  EXPECT_EQ(parsed->timestamp(), clock.now_ms());
}

TEST(Ulid, ParsesTheSpecExampleAndLowercase) {
  const auto a = Ulid::parse("01ARZ3NDEKTSV4RRFFQ69G5FAV");
  const auto b = Ulid::parse("01arz3ndektsv4rrffq69g5fav");
  ASSERT_TRUE(a && b);
  EXPECT_EQ(*a, *b);
  EXPECT_EQ(a->to_string(), "01ARZ3NDEKTSV4RRFFQ69G5FAV");
  EXPECT_EQ(a->timestamp().time_since_epoch().count(), 1469922850259);  // "01ARZ3NDEK" in base 32
  EXPECT_EQ(Ulid::parse("7ZZZZZZZZZZZZZZZZZZZZZZZZZ")->to_string(), "7ZZZZZZZZZZZZZZZZZZZZZZZZZ");
}

TEST(Ulid, RejectsWrongLengthBadCharactersAndOverflow) {
  EXPECT_FALSE(Ulid::parse("01ARZ3NDEKTSV4RRFFQ69G5FA").has_value());
  EXPECT_FALSE(Ulid::parse("01ARZ3NDEKTSV4RRFFQ69G5FAVV").has_value());
  EXPECT_FALSE(Ulid::parse("01ARZ3NDEKTSV4RRFFQ69G5FAU").has_value());  // U is not Crockford
  EXPECT_FALSE(Ulid::parse("01ARZ3NDEKTSV4RRFFQ69G5FAI").has_value());
  EXPECT_FALSE(Ulid::parse("8ZZZZZZZZZZZZZZZZZZZZZZZZZ").has_value());  // > 2^128
}

TEST(UlidGenerator, IsStrictlyIncreasingWithinOneMillisecondAndAcrossThreads) {
  ManualClock clock;
  DeterministicRandom random(2);
  UlidGenerator gen(clock, random);
  std::vector<std::vector<Ulid>> per_thread(4);
  std::vector<std::thread> threads;
  for (auto& out : per_thread) {
    threads.emplace_back([&gen, &out] {
      for (int i = 0; i < 500; ++i) out.push_back(gen.next());
    });
  }
  for (auto& t : threads) t.join();
  std::set<Ulid> all;
  for (const auto& out : per_thread) {
    for (std::size_t i = 1; i < out.size(); ++i) EXPECT_LT(out[i - 1], out[i]);
    all.insert(out.begin(), out.end());
  }
  EXPECT_EQ(all.size(), 2000u);
}

TEST(UlidGenerator, StaysOrderedWhenTheClockStepsBack) {
  ManualClock clock;
  DeterministicRandom random(3);
  UlidGenerator gen(clock, random);
  const Ulid a = gen.next();
  clock.advance(std::chrono::milliseconds{-5000});
  EXPECT_LT(a, gen.next());
}

}  // namespace
}  // namespace tessera
