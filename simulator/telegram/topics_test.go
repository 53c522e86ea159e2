package tgsim_test

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"
	"testing"

	"github.com/gotd/td/telegram/uploader"
	"github.com/gotd/td/tg"
	"github.com/gotd/td/tgerr"

	tgsim "github.com/passerelle/passerelle/simulator/telegram"
)

// TestForumTopicsRPC: forum topics through real gotd calls: a created
// topic's ID is its creation message's, getForumTopics and
// getForumTopicsByID list it, a message sent to it (reply_to the topic, or
// top_msg_id with a reply inside it) is in it, its creator may rename it
// and another member may not.
func TestForumTopicsRPC(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	ctx := testContext(t)
	alice := createAccount(t, s, tgsim.AccountSpec{Phone: "15550001", FirstName: "Alice"})
	bob := createAccount(t, s, tgsim.AccountSpec{Phone: "15550002", FirstName: "Bob"})
	dave := createAccount(t, s, tgsim.AccountSpec{Phone: "15550004", FirstName: "Dave"})
	ch, err := s.CreateForum(tgsim.ChannelSpec{Title: "Forum", Creator: bob.ID, Members: []int64{alice.ID, dave.ID}})
	if err != nil {
		t.Fatal(err)
	}
	api := signedIn(t, s, alice).api()
	peer := &tg.InputPeerChannel{ChannelID: ch.ID, AccessHash: ch.AccessHash}
	chats, err := api.ChannelsGetChannels(ctx, []tg.InputChannelClass{&tg.InputChannel{ChannelID: ch.ID, AccessHash: ch.AccessHash}})
	if err != nil || !chats.GetChats()[0].(*tg.Channel).Forum {
		t.Fatalf("the forum is not shown as one: %v", err)
	}
	if _, err := api.MessagesCreateForumTopic(ctx, &tg.MessagesCreateForumTopicRequest{Peer: peer, Title: "Ideas", RandomID: 7}); err != nil {
		t.Fatal(err)
	}
	topics := s.Topics(ch.ID)
	if len(topics) != 1 || topics[0].Title != "Ideas" || topics[0].Creator != alice.ID || topics[0].ID == tgsim.GeneralTopicID {
		t.Fatalf("topics %+v", topics)
	}
	topic := topics[0].ID
	if msgs := s.ChannelMessages(ch.ID); msgs[topic-1].Action != "topic_create" {
		t.Errorf("message %d is %+v, want the topic's creation", topic, msgs[topic-1])
	}
	list, err := api.MessagesGetForumTopics(ctx, &tg.MessagesGetForumTopicsRequest{Peer: peer, Limit: 10})
	if err != nil || len(list.Topics) != 1 || list.Topics[0].(*tg.ForumTopic).Title != "Ideas" {
		t.Fatalf("getForumTopics: %+v, %v", list, err)
	}
	byID, err := api.MessagesGetForumTopicsByID(ctx, &tg.MessagesGetForumTopicsByIDRequest{Peer: peer, Topics: []int{topic, 999}})
	if err != nil || len(byID.Topics) != 1 {
		t.Fatalf("getForumTopicsByID: %+v, %v", byID, err)
	}

	inTopic, err := s.PostInTopic(ch.ID, dave.ID, topic, "first idea", 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := api.MessagesSendMessage(ctx, &tg.MessagesSendMessageRequest{Peer: peer, Message: "to the topic", RandomID: 1,
		ReplyTo: &tg.InputReplyToMessage{ReplyToMsgID: topic}}); err != nil {
		t.Fatal(err)
	}
	reply := &tg.InputReplyToMessage{ReplyToMsgID: inTopic.ID}
	reply.SetTopMsgID(topic)
	if _, err := api.MessagesSendMessage(ctx, &tg.MessagesSendMessageRequest{Peer: peer, Message: "answer", RandomID: 2, ReplyTo: reply}); err != nil {
		t.Fatal(err)
	}
	if _, err := api.MessagesSendMessage(ctx, &tg.MessagesSendMessageRequest{Peer: peer, Message: "general", RandomID: 3}); err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"first idea": topic, "to the topic": topic, "answer": topic, "general": 0}
	for _, m := range s.ChannelMessages(ch.ID) {
		if w, ok := want[m.Text]; ok {
			if got := s.MessageTopic(ch.ID, m.ID); got != w {
				t.Errorf("%q is in topic %d, want %d", m.Text, got, w)
			}
			delete(want, m.Text)
		}
	}
	if len(want) != 0 {
		t.Errorf("messages missing: %v", want)
	}

	if _, err := api.MessagesEditForumTopic(ctx, &tg.MessagesEditForumTopicRequest{Peer: peer, TopicID: topic, Title: "Good ideas"}); err != nil {
		t.Fatal(err)
	}
	if s.Topics(ch.ID)[0].Title != "Good ideas" {
		t.Errorf("topic not renamed: %+v", s.Topics(ch.ID))
	}
	daveAPI := signedIn(t, s, dave).api()
	_, err = daveAPI.MessagesEditForumTopic(ctx, &tg.MessagesEditForumTopicRequest{Peer: peer, TopicID: topic, Title: "Dave's"})
	if !tgerr.Is(err, "CHAT_ADMIN_REQUIRED") {
		t.Errorf("dave renamed alice's topic: %v", err)
	}
}

// TestChatPhotoRPC: channels.editPhoto with an uploaded photo: refused to a
// member who is not an admin, done for an admin, shown in the channel and
// its full info, downloadable, and a service message for the members.
func TestChatPhotoRPC(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	ctx := testContext(t)
	alice := createAccount(t, s, tgsim.AccountSpec{Phone: "15550001", FirstName: "Alice"})
	bob := createAccount(t, s, tgsim.AccountSpec{Phone: "15550002", FirstName: "Bob"})
	ch, err := s.CreateChannel(tgsim.ChannelSpec{Title: "Group", Creator: bob.ID, Members: []int64{alice.ID}})
	if err != nil {
		t.Fatal(err)
	}
	img := image.NewRGBA(image.Rect(0, 0, 32, 32))
	img.Set(3, 3, color.RGBA{R: 255, A: 255})
	var pic bytes.Buffer
	if err := jpeg.Encode(&pic, img, nil); err != nil {
		t.Fatal(err)
	}
	api := signedIn(t, s, alice).api()
	in := &tg.InputChannel{ChannelID: ch.ID, AccessHash: ch.AccessHash}
	upload := func() *tg.InputChatUploadedPhoto {
		f, err := uploader.NewUploader(api).FromBytes(ctx, "p.jpg", pic.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		p := &tg.InputChatUploadedPhoto{}
		p.SetFile(f)
		return p
	}
	if _, err := api.ChannelsEditPhoto(ctx, &tg.ChannelsEditPhotoRequest{Channel: in, Photo: upload()}); !tgerr.Is(err, "CHAT_ADMIN_REQUIRED") {
		t.Fatalf("a member who is not an admin changed the photo: %v", err)
	}
	if err := s.PromoteChannelAdmin(ch.ID, alice.ID, true); err != nil {
		t.Fatal(err)
	}
	if _, err := api.ChannelsEditPhoto(ctx, &tg.ChannelsEditPhotoRequest{Channel: in, Photo: upload()}); err != nil {
		t.Fatal(err)
	}
	id, data, ok := s.ChannelPhoto(ch.ID)
	if !ok || !bytes.Equal(data, pic.Bytes()) {
		t.Fatal("the photo was not stored")
	}
	full, err := api.ChannelsGetFullChannel(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	photo, ok := full.FullChat.(*tg.ChannelFull).ChatPhoto.(*tg.Photo)
	if !ok || photo.ID != id {
		t.Fatalf("full info photo %+v, want ID %d", full.FullChat.(*tg.ChannelFull).ChatPhoto, id)
	}
	if cp, ok := full.Chats[0].(*tg.Channel).Photo.(*tg.ChatPhoto); !ok || cp.PhotoID != id {
		t.Errorf("the channel shows photo %+v", full.Chats[0].(*tg.Channel).Photo)
	}
	file, err := api.UploadGetFile(ctx, &tg.UploadGetFileRequest{Location: &tg.InputPhotoFileLocation{
		ID: photo.ID, AccessHash: photo.AccessHash, FileReference: photo.FileReference, ThumbSize: "x"}, Limit: 1 << 20})
	if err != nil || !bytes.Equal(file.(*tg.UploadFile).Bytes, pic.Bytes()) {
		t.Errorf("the photo does not download: %v", err)
	}
	msgs := s.ChannelMessages(ch.ID)
	if last := msgs[len(msgs)-1]; last.Action != "photo" || last.From != alice.ID {
		t.Errorf("last message %+v, want alice's photo change", last)
	}
	if _, err := api.ChannelsEditPhoto(ctx, &tg.ChannelsEditPhotoRequest{Channel: in, Photo: &tg.InputChatPhotoEmpty{}}); err != nil {
		t.Fatal(err)
	}
	if _, _, ok := s.ChannelPhoto(ch.ID); ok {
		t.Error("the photo was not removed")
	}
}
