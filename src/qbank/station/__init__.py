"""The exam station (`qbank station serve`): a separate application on a test site's LAN that opens the site's sealed
package in the window and runs the computer-based theory exam (§20) for the site's candidates — candidate screens,
autosave with every acknowledged answer kept through crashes, a proctor console, and a signed response bundle per
room sent back to the centre (store-and-forward). It has its own Litestar app and its own SQLite file; it is not
part of the centre's composition root."""
