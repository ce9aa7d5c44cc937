"""The web page in a real headless Chromium: it renders the room, follows changes made
through the API without a reload, and votes with the mouse."""

from __future__ import annotations

import json
import unittest

from .browser import Browser, chromium
from .support import Http, admin_headers, api_url, track, unique


@unittest.skipIf(chromium() is None, "chromium is not installed (apt-get install -y chromium)")
class WebPage(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.base = api_url()
        cls.browser = Browser(width=420, height=1600, mobile=True)

    @classmethod
    def tearDownClass(cls) -> None:
        cls.browser.close()

    def setUp(self) -> None:
        self.room = unique("page")
        self.http = Http(self.base)
        self.addCleanup(self.http.close)
        self.browser.open(f"{self.base}/rooms/{self.room}/")
        self.browser.wait_for("document.getElementById('status').textContent === 'live'",
                              what="the event stream to connect")

    def text(self, selector: str) -> str:
        return self.browser.js(f"document.querySelector({json.dumps(selector)})"
                               "?.textContent ?? null")

    def item(self, track_id: str) -> str:
        return f'#queue li[data-id="{track_id}"]'

    def test_a_track_added_over_the_api_appears_without_a_reload(self):
        self.browser.js("window.marker = 'same page'")
        self.http.post(f"/rooms/{self.room}/add_track", track("api1", title="From the API"))
        took = self.browser.wait_for(f"document.querySelector('{self.item('api1')}')",
                                     timeout=6, what="the new track to appear")
        self.assertLess(took, 3.0)  # live, not a poll: holds on a machine twice as slow
        self.assertIn("From the API", self.text(self.item("api1")))
        self.assertEqual(self.browser.js("window.marker"), "same page")  # no reload

    def test_clicking_a_vote_button_changes_the_count(self):
        self.http.post(f"/rooms/{self.room}/add_track", track("v1", title="Vote me"))
        self.browser.wait_for(f"document.querySelector('{self.item('v1')}')")
        up = f'{self.item("v1")} button.vote.up'
        self.browser.click(up)
        self.browser.wait_for(f"document.querySelector('{self.item('v1')} .count')"
                              ".textContent === '1'",
                              what="the count to become 1")
        self.browser.wait_for(f"document.querySelector('{up}')"
                              ".getAttribute('aria-pressed') === 'true'",
                              what="the button to show this browser's ballot")
        self.assertEqual(self.http.get(f"/rooms/{self.room}/metadata/v1").json()["votes"], 1)
        self.browser.click(up)  # this browser's ballot is already up: nothing changes
        self.browser.click(f'{self.item("v1")} button.vote.down')  # flips it: 1 -> -1
        self.browser.wait_for(f"document.querySelector('{self.item('v1')} .count')"
                              ".textContent === '-1'",
                              what="the count to become -1")
        self.assertEqual(self.http.get(f"/rooms/{self.room}/metadata/v1").json()["votes"], -1)

    def test_quick_clicks_count_in_the_order_they_were_made(self):
        self.http.post(f"/rooms/{self.room}/add_track", track("q1", title="Quick"))
        self.browser.wait_for(f"document.querySelector('{self.item('q1')}')")
        for n in range(20):  # down, up, down, ... up: the last click is the ballot that stays
            self.browser.click(f'{self.item("q1")} button.vote.{"up" if n % 2 else "down"}')
        self.browser.wait_for("performance.getEntriesByType('resource')"
                              ".filter(e => e.name.includes('/vote?')).length === 20",
                              what="the twenty votes to be answered")
        self.assertEqual(self.http.get(f"/rooms/{self.room}/metadata/q1").json()["votes"], 1)
        self.browser.wait_for(f"document.querySelector('{self.item('q1')} .count')"
                              ".textContent === '1'",
                              what="the count to become 1")
        self.assertEqual(self.browser.js(f"document.querySelector('{self.item('q1')} "
                                         "button.vote.up').getAttribute('aria-pressed')"), "true")

    def test_the_list_changes_in_place_and_keeps_its_order(self):
        for track_id in ("o1", "o2"):
            self.http.post(f"/rooms/{self.room}/add_track", track(track_id, title=track_id))
        self.browser.wait_for("document.querySelectorAll('#queue li').length === 2")
        self.browser.js(f"window.kept = document.querySelector('{self.item('o1')} button.vote.up')")
        self.http.post(f"/rooms/{self.room}/vote?id=o2&up=true&voter=someone-else")
        order = ("[...document.querySelectorAll('#queue li')]"
                 ".map(li => li.dataset.id + li.querySelector('.pos').textContent).join()")
        self.browser.wait_for(f"{order} === 'o21,o12'", what="o2 to move ahead of o1")
        # the same button, not a new one drawn over it: a click in progress is not lost
        self.assertTrue(self.browser.js(
            f"window.kept === document.querySelector('{self.item('o1')} button.vote.up')"))
        self.http.post(f"/rooms/{self.room}/play_next", headers=admin_headers())
        self.browser.wait_for(f"{order} === 'o11'", what="o2 to leave the queue")

    def test_pages_left_behind_let_go_of_their_streams(self):
        # A browser opens six connections to a server at most; a page left open on a stream
        # would leave the sixth room visited in the same tab unable to send anything.
        for _ in range(7):
            self.browser.open(f"{self.base}/rooms/{unique('visited')}/")
            self.browser.wait_for("document.getElementById('status').textContent === 'live'",
                                  what="the event stream to connect")
        self.browser.type_into("#add-title", "Still Heard")
        self.browser.type_into("#add-artist", "The Seventh Room")
        self.browser.click("#add-submit")
        self.browser.wait_for("document.querySelector('#queue li')", what="the track to be added")

    def test_the_add_form_now_playing_and_history(self):
        self.browser.type_into("#add-title", "Typed In")
        self.browser.type_into("#add-artist", "The Keyboard")
        self.browser.type_into("#add-duration", "3:05")
        self.browser.type_into("#add-id", "form1")
        self.browser.click("#add-submit")
        self.browser.wait_for(f"document.querySelector('{self.item('form1')}')",
                              what="the form's track")
        added = self.http.get(f"/rooms/{self.room}/metadata/form1").json()
        self.assertEqual((added["title"], added["artist"], added["duration"]),
                         ("Typed In", "The Keyboard", 185))
        self.http.post(f"/rooms/{self.room}/play_next", headers=admin_headers())
        self.browser.wait_for("document.getElementById('now-title').textContent === 'Typed In'",
                              what="now playing")
        self.browser.wait_for("document.querySelectorAll('#history li').length === 1",
                              what="the history")
        self.assertEqual(self.text("#now-duration"), "3:05")

    def test_errors_from_the_api_are_shown(self):
        self.http.post(f"/rooms/{self.room}/add_track", track("dup"))
        self.browser.type_into("#add-title", "Again")
        self.browser.type_into("#add-artist", "Someone")
        self.browser.type_into("#add-id", "dup")
        self.browser.click("#add-submit")
        self.browser.wait_for("!document.getElementById('error').hidden", what="the error")
        self.assertIn("already in the queue", self.text("#error-text"))

    def test_the_clock_runs_and_the_track_changes_by_itself(self):
        room = f"/rooms/{self.room}"
        self.http.post(f"{room}/add_track", track("auto1", title="First song", duration=2))
        self.http.post(f"{room}/add_track", track("auto2", title="Second song", duration=60))
        self.http.request("PATCH", f"{room}/settings", {"autoplay": True, "skip_threshold": 2},
                          headers=admin_headers())
        self.browser.wait_for("document.getElementById('now-title').textContent === "
                              "'First song'", timeout=6, what="the first track to start")
        self.assertEqual(self.browser.js("document.getElementById('set-autoplay').checked"),
                         True, "the settings form follows the room's settings")
        # nobody clicks anything: the room moves on when the 2 s track ends
        self.browser.wait_for("document.getElementById('now-title').textContent === "
                              "'Second song'", timeout=8, what="the track to change by itself")
        self.browser.wait_for("document.getElementById('now-elapsed').textContent === '0:01'",
                              timeout=5, what="the clock to run")
        self.assertEqual(self.text("#skip-count"), "0 of 2 skip votes")
        self.browser.click("#skip")
        self.browser.wait_for("document.getElementById('skip-count').textContent === "
                              "'1 of 2 skip votes'", what="the skip count to grow")
        self.browser.click("#pause-resume")
        self.browser.wait_for("document.getElementById('now-state').textContent === 'paused'",
                              what="the pause to show")
        self.assertTrue(self.http.get(f"{room}/now_playing").json()["now_playing"]["paused"])
        self.assertEqual(self.text("#pause-resume"), "Resume")

    def test_a_guest_joins_sees_their_tracks_and_starts_a_room_as_its_host(self):
        self.browser.type_into("#join-name", "Pat")
        self.browser.click("#join-submit")
        self.browser.wait_for("!document.getElementById('joined').hidden && "
                              "document.getElementById('joined-name').textContent === 'Pat' && "
                              "document.getElementById('status').textContent === 'live'",
                              what="the page to show the guest")
        self.http.post(f"/rooms/{self.room}/add_track", track("other", title="Not mine"))
        self.browser.type_into("#add-title", "Mine Alone")
        self.browser.type_into("#add-artist", "Pat's Band")
        self.browser.type_into("#add-id", "pat1")
        self.browser.click("#add-submit")
        self.browser.wait_for(f"document.querySelector('{self.item('pat1')}.mine')",
                              what="the guest's track marked as theirs")
        self.assertFalse(self.browser.js(
            f"document.querySelector('{self.item('other')}').classList.contains('mine')"))
        added = self.http.get(f"/rooms/{self.room}/metadata/pat1").json()
        self.assertEqual(added["added_by"]["name"], "Pat")
        # a new room opens as its host: the token came in the fragment, and left the URL
        self.browser.click("#new-room")
        self.browser.wait_for(f"location.pathname !== '/rooms/{self.room}/' && "
                              "document.getElementById('status').textContent === 'live'",
                              what="the new room's page")
        self.assertEqual(self.browser.js("location.hash"), "")
        room = self.browser.js("location.pathname").split("/")[2]
        token = self.browser.js(f"sessionStorage.getItem('mq:host:{room}')")
        self.assertTrue(token and token.startswith("mqh_"), token)
        self.assertFalse(self.browser.js("document.getElementById('host-role').hidden"))
        reply = self.http.request("PATCH", f"/rooms/{room}/settings", {"locked": True},
                                  headers={"Authorization": f"Bearer {token}"})
        self.assertEqual(reply.status, 200)
        self.browser.wait_for("document.getElementById('set-locked').checked",
                              what="the settings form to follow")

    def test_controls_are_labelled(self):
        self.http.post(f"/rooms/{self.room}/add_track", track("l1", title="Labelled"))
        self.browser.wait_for(f"document.querySelector('{self.item('l1')}')")
        unlabelled = self.browser.js(
            "[...document.querySelectorAll('button, input')]\n"
            "            .filter(el => !(el.getAttribute('aria-label') || el.labels?.length"
            " || el.textContent.trim()))\n"
            "            .map(el => el.outerHTML)")
        self.assertEqual(unlabelled, [])
        self.assertEqual(self.browser.js(
            f"document.querySelector('{self.item('l1')} button.vote.up')"
            ".getAttribute('aria-label')"),
            "Vote up Labelled")
